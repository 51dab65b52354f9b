package azblob

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
)

// auth is how requests to one account are authorised.
type auth struct {
	token     azcore.TokenCredential         // Microsoft Entra ID (service principal, workload or managed identity)
	sharedKey *container.SharedKeyCredential // account key
	sas       string                         // a shared access signature, appended to every URL
	source    string                         // where it came from, for messages (never the secret)
}

func (a auth) anonymous() bool { return a.token == nil && a.sharedKey == nil && a.sas == "" }

// settings is the Azure environment resolved for one URI.
type settings struct {
	endpoint string // blob service URL, e.g. https://ACCOUNT.blob.core.windows.net
	account  string
	auth     auth
}

// resolveSettings reads the environment as KServe's initializer does, in
// its order: AZURE_CLIENT_ID (after copying the legacy AZ_CLIENT_ID,
// AZ_CLIENT_SECRET and AZ_TENANT_ID over) selects Microsoft Entra ID
// credentials; else AZURE_STORAGE_ACCESS_KEY (an account key, or a SAS);
// else a key or SAS in AZURE_STORAGE_CONNECTION_STRING; else a SAS in the
// URI's query; else anonymous access. AZURE_STORAGE_CONNECTION_STRING's
// BlobEndpoint (or its EndpointSuffix) replaces the URI's host, which is
// how Azurite and sovereign clouds are reached.
func resolveSettings(getenv func(string) string, loc location, opts policy.ClientOptions) (settings, error) {
	env := legacyEnv(getenv)
	s := settings{endpoint: "https://" + loc.Host, account: loc.Account}
	cs, err := parseConnectionString(env("AZURE_STORAGE_CONNECTION_STRING"))
	if err != nil {
		return settings{}, err
	}
	if cs.account != "" {
		s.account = cs.account
	}
	switch {
	case cs.blobEndpoint != "":
		s.endpoint = strings.TrimRight(cs.blobEndpoint, "/")
	case cs.endpointSuffix != "":
		proto := cs.protocol
		if proto == "" {
			proto = "https"
		}
		s.endpoint = proto + "://" + s.account + ".blob." + cs.endpointSuffix
	}

	switch {
	case env("AZURE_CLIENT_ID") != "":
		cred, source, err := entraCredential(env, opts)
		if err != nil {
			return settings{}, err
		}
		s.auth = auth{token: cred, source: source}
	case env("AZURE_STORAGE_ACCESS_KEY") != "":
		s.auth, err = keyOrSAS(env("AZURE_STORAGE_ACCESS_KEY"), s.account, "AZURE_STORAGE_ACCESS_KEY")
	case cs.accountKey != "":
		s.auth, err = keyOrSAS(cs.accountKey, s.account, "AZURE_STORAGE_CONNECTION_STRING (AccountKey)")
	case cs.sas != "":
		s.auth = auth{sas: strings.TrimPrefix(cs.sas, "?"), source: "AZURE_STORAGE_CONNECTION_STRING (SharedAccessSignature)"}
	case loc.SAS != "":
		s.auth = auth{sas: loc.SAS, source: "the SAS in the URI"}
	default:
		s.auth = auth{source: "anonymous (no AZURE_CLIENT_ID, AZURE_STORAGE_ACCESS_KEY or SAS)"}
	}
	return s, err
}

// legacyEnv overlays KServe's older names: AZ_TENANT_ID, AZ_CLIENT_ID and
// AZ_CLIENT_SECRET, when set, replace their AZURE_* counterparts (KServe
// copies them into the environment before asking azure-identity).
func legacyEnv(getenv func(string) string) func(string) string {
	legacy := map[string]string{
		"AZURE_TENANT_ID": "AZ_TENANT_ID", "AZURE_CLIENT_ID": "AZ_CLIENT_ID", "AZURE_CLIENT_SECRET": "AZ_CLIENT_SECRET",
	}
	return func(k string) string {
		if old, ok := legacy[k]; ok {
			if v := getenv(old); v != "" {
				return v
			}
		}
		return getenv(k)
	}
}

// entraCredential is DefaultAzureCredential's chain for a pod, read from
// env rather than the process environment: a service principal secret
// (AZURE_CLIENT_SECRET + AZURE_TENANT_ID), workload identity
// (AZURE_FEDERATED_TOKEN_FILE + AZURE_TENANT_ID), then the managed identity
// AZURE_CLIENT_ID names. AZURE_AUTHORITY_HOST selects a sovereign cloud.
func entraCredential(env func(string) string, opts policy.ClientOptions) (azcore.TokenCredential, string, error) {
	if h := env("AZURE_AUTHORITY_HOST"); h != "" {
		opts.Cloud = cloud.Configuration{ActiveDirectoryAuthorityHost: h, Services: opts.Cloud.Services}
	}
	id, tenant := env("AZURE_CLIENT_ID"), env("AZURE_TENANT_ID")
	var chain []azcore.TokenCredential
	var names []string
	if secret := env("AZURE_CLIENT_SECRET"); secret != "" && tenant != "" {
		c, err := azidentity.NewClientSecretCredential(tenant, id, secret, &azidentity.ClientSecretCredentialOptions{ClientOptions: opts})
		if err != nil {
			return nil, "", fmt.Errorf("AZURE_CLIENT_SECRET credential for client %s: %s", id, firstLine(err.Error()))
		}
		chain, names = append(chain, c), append(names, "service principal secret")
	}
	if file := env("AZURE_FEDERATED_TOKEN_FILE"); file != "" && tenant != "" {
		c, err := azidentity.NewWorkloadIdentityCredential(&azidentity.WorkloadIdentityCredentialOptions{
			ClientOptions: opts, ClientID: id, TenantID: tenant, TokenFilePath: file,
		})
		if err != nil {
			return nil, "", fmt.Errorf("workload identity for client %s (AZURE_FEDERATED_TOKEN_FILE %s): %s", id, file, firstLine(err.Error()))
		}
		chain, names = append(chain, c), append(names, "workload identity")
	}
	mi, err := azidentity.NewManagedIdentityCredential(&azidentity.ManagedIdentityCredentialOptions{
		ClientOptions: opts, ID: azidentity.ClientID(id),
	})
	if err != nil {
		return nil, "", fmt.Errorf("managed identity %s: %s", id, firstLine(err.Error()))
	}
	chain, names = append(chain, mi), append(names, "managed identity")
	c, err := azidentity.NewChainedTokenCredential(chain, nil)
	if err != nil {
		return nil, "", fmt.Errorf("azure credentials for client %s: %s", id, firstLine(err.Error()))
	}
	return c, fmt.Sprintf("AZURE_CLIENT_ID %s (%s)", id, strings.Join(names, ", then ")), nil
}

// keyOrSAS reads AZURE_STORAGE_ACCESS_KEY as KServe's SDK does: a value
// that parses as a query with a signature is a SAS, anything else is the
// account key.
func keyOrSAS(v, account, source string) (auth, error) {
	if q, err := url.ParseQuery(strings.TrimPrefix(v, "?")); err == nil && q.Get("sig") != "" {
		return auth{sas: strings.TrimPrefix(v, "?"), source: source + " (SAS)"}, nil
	}
	k, err := container.NewSharedKeyCredential(account, v)
	if err != nil {
		// The SDK's message quotes nothing secret, but keep only its gist.
		return auth{}, fmt.Errorf("%s is neither a SAS nor a base64 account key for account %s", source, account)
	}
	return auth{sharedKey: k, source: source + " (account key for " + account + ")"}, nil
}

// connectionString holds the fields of AZURE_STORAGE_CONNECTION_STRING this
// provider uses.
type connectionString struct {
	blobEndpoint, endpointSuffix, protocol, account, accountKey, sas string
}

// parseConnectionString splits "Key=Value;Key=Value" (values may contain
// '=', as base64 keys and SAS tokens do).
func parseConnectionString(s string) (connectionString, error) {
	var cs connectionString
	for part := range strings.SplitSeq(s, ";") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		k, v, ok := strings.Cut(part, "=")
		if !ok {
			return cs, fmt.Errorf("AZURE_STORAGE_CONNECTION_STRING: %q is not Key=Value", k)
		}
		switch strings.ToLower(k) {
		case "blobendpoint":
			cs.blobEndpoint = v
		case "endpointsuffix":
			cs.endpointSuffix = v
		case "defaultendpointsprotocol":
			cs.protocol = v
		case "accountname":
			cs.account = v
		case "accountkey":
			cs.accountKey = v
		case "sharedaccesssignature":
			cs.sas = v
		}
	}
	if cs.blobEndpoint != "" {
		if u, err := url.Parse(cs.blobEndpoint); err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
			return cs, fmt.Errorf("AZURE_STORAGE_CONNECTION_STRING: BlobEndpoint %q is not an http(s) URL", cs.blobEndpoint)
		}
	}
	return cs, nil
}

// firstLine keeps an error to one line (identity errors are multi-line).
func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return strings.TrimSpace(s)
}
