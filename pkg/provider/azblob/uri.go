package azblob

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"

	"github.com/storage-initializer/storage-initializer/internal/redact"
)

// KServe's Azure Blob URI forms: https://ACCOUNT.blob.core.windows.net/…
// and https://ACCOUNT.zNN.blob.storage.azure.net/… (Azure DNS zone
// endpoints); and its Azure File forms, which this package does not serve.
var (
	blobHost = regexp.MustCompile(`(?i)^([a-z0-9]+)\.(blob\.core\.windows\.net|z[0-9]{1,2}\.blob\.storage\.azure\.net)$`)
	fileHost = regexp.MustCompile(`(?i)^([a-z0-9]+)\.(file\.core\.windows\.net|z[0-9]{1,2}\.file\.storage\.azure\.net)$`)
)

// Matches reports whether src is an Azure Blob URI. The CLI routes https://
// URIs here before the generic https:// provider.
func Matches(src string) bool {
	u, err := url.Parse(src)
	return err == nil && strings.EqualFold(u.Scheme, "https") && blobHost.MatchString(u.Hostname())
}

// IsFileShare reports whether src names an Azure File share, which KServe
// serves and this binary does not: the CLI says so instead of fetching it
// as a web page.
func IsFileShare(src string) bool {
	u, err := url.Parse(src)
	return err == nil && strings.EqualFold(u.Scheme, "https") && fileHost.MatchString(u.Hostname())
}

// location is a parsed Azure Blob URI.
type location struct {
	Account   string
	Host      string // ACCOUNT.blob.core.windows.net
	Container string
	// Blob is the blob name or folder the URI names, without leading or
	// repeated slashes at the start; "" means the whole container.
	Blob string
	// SAS is the URI's query: a shared access signature, when present.
	SAS string
}

// parseURI splits https://ACCOUNT.HOST/CONTAINER/PATH[?SAS]. The path is
// URL-decoded (it is a URL, unlike s3:// keys); leading slashes of the blob
// path are dropped, as KServe does.
func parseURI(src string) (location, error) {
	u, err := url.Parse(src)
	if err != nil {
		// url's error quotes the whole URI, user info and SAS included.
		return location{}, fmt.Errorf("invalid Azure Blob URI %q: not a valid URL", redacted(src))
	}
	if u.User != nil {
		return location{}, fmt.Errorf("invalid Azure Blob URI %s: user info is not allowed (use a SAS or AZURE_STORAGE_ACCESS_KEY)", redacted(src))
	}
	m := blobHost.FindStringSubmatch(u.Hostname())
	if !strings.EqualFold(u.Scheme, "https") || m == nil || u.Port() != "" {
		return location{}, fmt.Errorf("not an Azure Blob URI: %q (want https://ACCOUNT.blob.core.windows.net/CONTAINER/PATH)", redacted(src))
	}
	container, blob, _ := strings.Cut(strings.TrimLeft(u.Path, "/"), "/")
	if err := checkContainer(container); err != nil {
		return location{}, fmt.Errorf("invalid Azure Blob URI %q: %w", redacted(src), err)
	}
	return location{
		Account:   strings.ToLower(m[1]),
		Host:      strings.ToLower(u.Hostname()),
		Container: container,
		Blob:      strings.TrimLeft(blob, "/"),
		SAS:       u.RawQuery,
	}, nil
}

// checkContainer applies Azure's container naming rules (3-63 lowercase
// letters, digits and single dashes; $root and $web are special).
func checkContainer(c string) error {
	if c == "" {
		return fmt.Errorf("missing container name (want https://ACCOUNT.blob.core.windows.net/CONTAINER/PATH)")
	}
	if c == "$root" || c == "$web" {
		return nil
	}
	if len(c) < 3 || len(c) > 63 {
		return fmt.Errorf("container name %q must be 3 to 63 characters long", c)
	}
	for _, r := range c {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
			return fmt.Errorf("container name %q contains %q (container names are lowercase letters, digits and dashes)", c, r)
		}
	}
	return nil
}

// String renders the location without its SAS, for logs and messages.
func (l location) String() string {
	return "https://" + l.Host + "/" + l.Container + "/" + l.Blob
}

// folderPrefix is the listing prefix of the folder the path names: exactly
// one trailing slash, so …/model never matches model-hf/.
func (l location) folderPrefix() string {
	if l.Blob == "" || strings.HasSuffix(l.Blob, "/") {
		return l.Blob
	}
	return l.Blob + "/"
}

// blobURI names one blob of the container in messages.
func (l location) blobURI(name string) string {
	return "https://" + l.Host + "/" + l.Container + "/" + name
}

// redacted drops user info, query (a SAS is a credential) and fragment
// from a URI for messages.
func redacted(src string) string { return redact.URI(src) }
