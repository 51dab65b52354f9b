package modelsig

import (
	"context"
	"testing"

	"github.com/storage-initializer/storage-initializer/internal/signtest"
)

// BenchmarkVerifyKey100kShards: the cost of verifying a large manifest (a 100 KB
// file in 1-byte shards = 100,000 resources; a 3 GiB model in 1 MiB shards has 3,072).
func BenchmarkVerifyKey100kShards(b *testing.B) {
	bundle, pub := signtest.SignKey(b, map[string][]byte{"w.bin": make([]byte, 100_000)}, signtest.Options{ShardSize: 1})
	b.SetBytes(int64(len(bundle)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		m, err := Verify(context.Background(), bundle, Policy{Method: MethodKey, PublicKeyPEM: pub})
		if err != nil || len(m.Files["w.bin"]) != 100_000 {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifySigstoreFixture(b *testing.B) {
	t := &testing.T{}
	bundle := readFile(t, fixtures+"/v1.1.0-sigstore/model.sig")
	p := fixturePolicy(t, "sigstore")
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := Verify(context.Background(), bundle, p); err != nil {
			b.Fatal(err)
		}
	}
}
