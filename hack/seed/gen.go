package main

import (
	"bufio"
	"encoding/binary"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// gen writes an LLM-shaped model: safetensors-like shards holding bf16
// values drawn from a normal distribution (gzip shrinks them only a little,
// as with real weights), small JSON/tokenizer files, and optionally many
// small files.
func gen(args []string) error {
	fs := flag.NewFlagSet("gen", flag.ContinueOnError)
	shards := fs.Int("shards", 3, "number of weight shards")
	shardSize := fs.String("shard-size", "1GiB", "size of each shard")
	small := fs.Int("small-files", 0, "number of extra small files (small/NNNN.bin)")
	smallSize := fs.String("small-size", "256KiB", "size of each small file")
	seed := fs.Uint64("seed", 1, "random seed")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("gen: want one DIR")
	}
	dir := fs.Arg(0)
	size, err := parseSize(*shardSize)
	if err != nil {
		return err
	}
	ssize, err := parseSize(*smallSize)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	r := rand.New(rand.NewPCG(*seed, 42))
	for i := 1; i <= *shards; i++ {
		name := fmt.Sprintf("model-%05d-of-%05d.safetensors", i, *shards)
		if err := writeBF16(filepath.Join(dir, name), size, r); err != nil {
			return err
		}
	}
	meta := map[string]string{
		"config.json":            `{"architectures":["LlamaForCausalLM"],"hidden_size":4096,"num_hidden_layers":32,"torch_dtype":"bfloat16"}`,
		"generation_config.json": `{"do_sample":true,"temperature":0.6,"top_p":0.9}`,
		"tokenizer_config.json":  `{"model_max_length":8192,"tokenizer_class":"PreTrainedTokenizerFast"}`,
	}
	for name, body := range meta {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body+"\n"), 0o644); err != nil {
			return err
		}
	}
	var tok strings.Builder
	tok.WriteString(`{"model":{"type":"BPE","vocab":{`)
	for i := range 20000 {
		fmt.Fprintf(&tok, `"tok%d":%d,`, i, i)
	}
	tok.WriteString(`"end":20000}}}` + "\n")
	if err := os.WriteFile(filepath.Join(dir, "tokenizer.json"), []byte(tok.String()), 0o644); err != nil {
		return err
	}
	if *small > 0 {
		sd := filepath.Join(dir, "small")
		if err := os.MkdirAll(sd, 0o755); err != nil {
			return err
		}
		buf := make([]byte, ssize)
		for i := range *small {
			for j := 0; j+8 <= len(buf); j += 8 {
				binary.LittleEndian.PutUint64(buf[j:], r.Uint64())
			}
			if err := os.WriteFile(filepath.Join(sd, fmt.Sprintf("%04d.bin", i)), buf, 0o644); err != nil {
				return err
			}
		}
	}
	return nil
}

// writeBF16 fills a file with bfloat16 samples of N(0, 0.02²), the usual
// initialisation scale of transformer weights. A 64 MiB pool of samples is
// generated once and written rotated, so generation is fast while gzip (32
// KiB window) still sees weight-like entropy.
func writeBF16(path string, size int64, r *rand.Rand) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	w := bufio.NewWriterSize(f, 4<<20)
	pool := make([]byte, 64<<20)
	for i := 0; i+2 <= len(pool); i += 2 {
		v := float32(r.NormFloat64() * 0.02)
		binary.LittleEndian.PutUint16(pool[i:], uint16(math.Float32bits(v)>>16))
	}
	rot := int(r.Uint64N(uint64(len(pool)/2))) * 2
	for written := int64(0); written < size; {
		chunk := pool[rot:]
		if int64(len(chunk)) > size-written {
			chunk = chunk[:size-written]
		}
		if _, err := w.Write(chunk); err != nil {
			return err
		}
		written += int64(len(chunk))
		rot = int(r.Uint64N(uint64(len(pool)/2))) * 2
	}
	if err := w.Flush(); err != nil {
		return err
	}
	return f.Close()
}

func parseSize(s string) (int64, error) {
	mult := int64(1)
	for suf, m := range map[string]int64{"GiB": 1 << 30, "MiB": 1 << 20, "KiB": 1 << 10} {
		if strings.HasSuffix(s, suf) {
			s, mult = strings.TrimSuffix(s, suf), m
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("invalid size %q", s)
	}
	return n * mult, nil
}
