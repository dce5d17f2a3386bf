package thru

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"mime"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// This file is the one place that holds the details of the Thru wire protocol
// that the published documents leave open, and the choices this project makes
// for them (thru-api.md §5). The client and the simulator (testkit/thrusim)
// both use it, so they always agree; when a real Thru site disagrees, change
// it here.
//
// The choices:
//
//   - Header cipher: AES-128-CBC with PKCS#7 padding, a random 16-byte IV
//     prepended to the ciphertext, then standard Base64 (CBCRandomIV). A
//     fixed-IV variant (CBCFixedIV) is the likely real-world alternative; any
//     HeaderCipher may be plugged in. Keys are 16 raw bytes given in hex or
//     Base64 (ParseKey).
//   - Header plaintext: "<siteUrl>|<siteAccessKey>|<flowSecretKey>|<UTC time>",
//     the time in RFC 3339 with seconds, in UTC ("2026-11-22T10:04:05Z";
//     HeaderTimeLayout). A site refuses a header used twice, so with a
//     cipher whose tokens repeat (a fixed IV) a client gives each header a
//     second of its own, running ahead of its clock within the site's
//     window (Client.stamp), and a refused header is tried once more.
//   - Content API chunk metadata: JSON {"sequenceNumber": n, "size": bytes},
//     first chunk 1 (ChunkMeta). Multipart requests of the Content API carry
//     the JSON in their first part (form name "metadata") and the bytes in
//     their second (form name "file"); the simulator goes by order.
//   - Upload session status: JSON {"transferId", "state", "chunks",
//     "metadata"} (SessionStatus); states open, committed, aborted.
//   - Preflight answer: JSON {"accepted", "reason", "maxChunkSize",
//     "simpleUploadUrl", "chunkedUploadUrl"} (Preflight); "accepted" absent
//     means accepted. A 2xx answer to a preflight, upload or commit that is
//     not the JSON expected is logged and taken as done, never as a failure.
//   - Content API key: in the Authorization header as given, as the seed
//     says ("a Bearer token or API Key in the Authorization header"); a
//     site may want it in X-Api-Key instead (APIKeyHeader, api_key_in).
//   - Simple upload and Commit answer JSON {"fileCode", "size"}
//     (UploadResult).
//   - File metadata (§1.3) answer: FileInfo's JSON fields; unknown fields are
//     kept in FileInfo.Raw.
//   - Flow outcome: FlowOutcome's JSON fields, with
//     SelectiveDropOffRecipients a list of strings.

// Paths of the calls, relative to the site's base URL.
const (
	PathPickup         = "/api/TransportMgr/FlowPickup/"       // + FlowCode
	PathDropOff        = "/api/TransportMgr/FlowDropOffChunk/" // + FlowCode
	PathFileMetadata   = "/api/TransportMgr/FileMetadata/"     // + FileCode
	PathFlowOutcome    = "/api/TransportMgr/FlowOutcome"
	PathContent        = "/api/Files/1.0/Content"
	PathUploadSessions = "/api/Files/1.0/Upload_Sessions" // + "/" + id [+ "/Commit" | "/Abort"]
)

// Header names and schemes.
const (
	// AuthScheme prefixes the encrypted token in the Authorization header of
	// every Connector API call: "Authorization: TransportMgrAuthHeader <token>".
	AuthScheme = "TransportMgrAuthHeader"
	// APIKeyHeader carries a Content API key where a site wants it outside
	// the Authorization header (api_key_in: x-api-key).
	APIKeyHeader = "X-Api-Key"
	// TransferIDHeader carries the id of a new upload session.
	TransferIDHeader = "X-Thru-Transferid"
	// HeaderTimeLayout formats the UTC time inside the header.
	HeaderTimeLayout = time.RFC3339
	// DropOffFormName is the form field name of every drop-off part.
	DropOffFormName = "file"
	// MetadataFormName and ContentFormName name the two parts of a Content
	// API multipart request.
	MetadataFormName = "metadata"
	ContentFormName  = "file"
	// FileTimeLayout formats FileAttributes.FileTime ("06/22/2022").
	FileTimeLayout = "01/02/2006"
)

// Limits the documents state.
const (
	// SimpleUploadLimit is the largest file a simple upload accepts (2 GB).
	SimpleUploadLimit = 2 << 30
	// MaxDropOffChunkNumber is the largest six-digit chunk number.
	MaxDropOffChunkNumber = 999999
)

// HeaderCipher encrypts the plaintext of a TransportMgrAuthHeader into its
// Base64 token and back. Implementations must be safe for concurrent use.
type HeaderCipher interface {
	Encrypt(plaintext []byte) (string, error)
	Decrypt(token string) ([]byte, error)
}

// ParseKey decodes an AES-128 key given as 32 hex digits or as Base64 of 16
// bytes. The error never contains the key.
func ParseKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if len(s) == 32 {
		if k, err := hex.DecodeString(s); err == nil {
			return k, nil
		}
	}
	if k, err := base64.StdEncoding.DecodeString(s); err == nil && len(k) == 16 {
		return k, nil
	}
	return nil, errors.New("thru: AES key: want 16 bytes as 32 hex digits or Base64 (AES-128)")
}

// CBCRandomIV returns the default header cipher: AES-128-CBC, PKCS#7, a
// random IV prepended to the ciphertext, Base64.
func CBCRandomIV(key []byte) (HeaderCipher, error) {
	b, err := newBlock(key)
	if err != nil {
		return nil, err
	}
	return &cbcCipher{block: b}, nil
}

// CBCFixedIV returns AES-128-CBC with PKCS#7 and a fixed 16-byte IV that is
// not sent; the token is Base64 of the ciphertext alone.
func CBCFixedIV(key, iv []byte) (HeaderCipher, error) {
	b, err := newBlock(key)
	if err != nil {
		return nil, err
	}
	if len(iv) != aes.BlockSize {
		return nil, fmt.Errorf("thru: fixed IV: want %d bytes, got %d", aes.BlockSize, len(iv))
	}
	return &cbcCipher{block: b, iv: bytes.Clone(iv)}, nil
}

// Where a Content API key goes (ClientConfig.APIKeyIn).
const (
	APIKeyInAuthorization = "authorization"
	APIKeyInHeader        = "x-api-key"
)

// Cipher modes accepted by NewHeaderCipher.
const (
	ModeCBCRandomIV = "cbc"
	ModeCBCFixedIV  = "cbc-fixed-iv"
)

// NewHeaderCipher builds the cipher for mode ("" or "cbc": CBCRandomIV,
// "cbc-fixed-iv": CBCFixedIV with iv) from a key and IV in ParseKey's
// syntax. Errors never contain the key.
func NewHeaderCipher(mode, key, iv string) (HeaderCipher, error) {
	k, err := ParseKey(key)
	if err != nil {
		return nil, err
	}
	switch mode {
	case "", ModeCBCRandomIV:
		return CBCRandomIV(k)
	case ModeCBCFixedIV:
		v, err := ParseKey(iv)
		if err != nil {
			return nil, errors.New("thru: fixed IV: want 16 bytes as 32 hex digits or Base64")
		}
		return CBCFixedIV(k, v)
	}
	return nil, fmt.Errorf("thru: unknown header cipher mode %q (known: %s, %s)", mode, ModeCBCRandomIV, ModeCBCFixedIV)
}

func newBlock(key []byte) (cipher.Block, error) {
	if len(key) != 16 {
		return nil, fmt.Errorf("thru: AES key: want 16 bytes (AES-128), got %d", len(key))
	}
	return aes.NewCipher(key)
}

type cbcCipher struct {
	block cipher.Block
	iv    []byte // nil: random, prepended
}

func (c *cbcCipher) Encrypt(plaintext []byte) (string, error) {
	pad := aes.BlockSize - len(plaintext)%aes.BlockSize
	padded := append(bytes.Clone(plaintext), bytes.Repeat([]byte{byte(pad)}, pad)...)
	iv := c.iv
	out := make([]byte, 0, aes.BlockSize+len(padded))
	if iv == nil {
		iv = make([]byte, aes.BlockSize)
		if _, err := rand.Read(iv); err != nil {
			return "", err
		}
		out = append(out, iv...)
	}
	ct := make([]byte, len(padded))
	cipher.NewCBCEncrypter(c.block, iv).CryptBlocks(ct, padded)
	return base64.StdEncoding.EncodeToString(append(out, ct...)), nil
}

// Repeats reports whether the same plaintext gives the same token, as with a
// fixed IV: a client must then never put two headers in the same second.
func (c *cbcCipher) Repeats() bool { return c.iv != nil }

// errBadToken is deliberately vague: padding-oracle style detail helps no one.
var errBadToken = errors.New("thru: authorization token does not decrypt")

func (c *cbcCipher) Decrypt(token string) ([]byte, error) {
	raw, err := base64.StdEncoding.DecodeString(token)
	if err != nil {
		return nil, errBadToken
	}
	iv := c.iv
	if iv == nil {
		if len(raw) < aes.BlockSize {
			return nil, errBadToken
		}
		iv, raw = raw[:aes.BlockSize], raw[aes.BlockSize:]
	}
	if len(raw) == 0 || len(raw)%aes.BlockSize != 0 {
		return nil, errBadToken
	}
	pt := make([]byte, len(raw))
	cipher.NewCBCDecrypter(c.block, iv).CryptBlocks(pt, raw)
	pad := int(pt[len(pt)-1])
	if pad == 0 || pad > aes.BlockSize {
		return nil, errBadToken
	}
	for _, b := range pt[len(pt)-pad:] {
		if int(b) != pad {
			return nil, errBadToken
		}
	}
	return pt[:len(pt)-pad], nil
}

// HeaderClaims is the plaintext of a TransportMgrAuthHeader.
type HeaderClaims struct {
	SiteURL       string
	SiteAccessKey string
	FlowSecretKey string
	Time          time.Time
}

// String describes h without its secrets, so that printing claims by
// accident leaks nothing.
func (h HeaderClaims) String() string {
	return fmt.Sprintf("{site %s, keys redacted, time %s}", h.SiteURL, h.Time.UTC().Format(HeaderTimeLayout))
}

// Plaintext returns "<siteUrl>|<siteAccessKey>|<flowSecretKey>|<UTC time>",
// what the header encrypts. It contains secrets: never log it.
func (h HeaderClaims) Plaintext() string {
	return strings.Join([]string{h.SiteURL, h.SiteAccessKey, h.FlowSecretKey, h.Time.UTC().Format(HeaderTimeLayout)}, "|")
}

// EncodeAuthHeader returns the value of the Authorization header for h:
// "TransportMgrAuthHeader <token>". Build a new one for every request.
func EncodeAuthHeader(c HeaderCipher, h HeaderClaims) (string, error) {
	for _, s := range []string{h.SiteURL, h.SiteAccessKey, h.FlowSecretKey} {
		if strings.Contains(s, "|") {
			return "", errors.New("thru: site URL, access key and flow secret key must not contain '|'")
		}
	}
	tok, err := c.Encrypt([]byte(h.Plaintext()))
	if err != nil {
		return "", err
	}
	return AuthScheme + " " + tok, nil
}

// ErrBadAuthHeader is returned by DecodeAuthHeader for a value that is not a
// well-formed TransportMgrAuthHeader.
var ErrBadAuthHeader = errors.New("thru: malformed TransportMgrAuthHeader")

// DecodeAuthHeader parses an Authorization header value and returns its
// claims and the token (which a server remembers to refuse replays). Errors
// wrap ErrBadAuthHeader and never contain the plaintext.
func DecodeAuthHeader(c HeaderCipher, value string) (HeaderClaims, string, error) {
	scheme, tok, ok := strings.Cut(strings.TrimSpace(value), " ")
	tok = strings.TrimSpace(tok)
	if !ok || !strings.EqualFold(scheme, AuthScheme) || tok == "" {
		return HeaderClaims{}, "", fmt.Errorf("%w: want %q followed by a token", ErrBadAuthHeader, AuthScheme+" ")
	}
	pt, err := c.Decrypt(tok)
	if err != nil {
		return HeaderClaims{}, "", fmt.Errorf("%w: the token does not decrypt with the site's AES key and mode", ErrBadAuthHeader)
	}
	f := strings.Split(string(pt), "|")
	if len(f) != 4 {
		return HeaderClaims{}, "", fmt.Errorf("%w: want 4 fields separated by '|', got %d", ErrBadAuthHeader, len(f))
	}
	t, err := time.Parse(HeaderTimeLayout, f[3])
	if err != nil {
		return HeaderClaims{}, "", fmt.Errorf("%w: time is not RFC 3339", ErrBadAuthHeader)
	}
	return HeaderClaims{SiteURL: f[0], SiteAccessKey: f[1], FlowSecretKey: f[2], Time: t.UTC()}, tok, nil
}

// Drop-off part names (§1.2).

// ChunkZeroName is the part filename of drop-off chunk zero: "<FileCode>_Chunk000000.txt".
func ChunkZeroName(fileCode string) string { return fileCode + "_Chunk000000.txt" }

// ChunkName is the part filename of content chunk n (from 1): "<FileCode>_Chunk<NNNNNN>".
func ChunkName(fileCode string, n int) string { return fmt.Sprintf("%s_Chunk%06d", fileCode, n) }

// EOFName is the part filename of the end-of-file call: "EOF<FileCode>".
func EOFName(fileCode string) string { return "EOF" + fileCode }

// DropOffPartKind says what a drop-off part is.
type DropOffPartKind int

const (
	PartChunkZero DropOffPartKind = iota + 1
	PartContent
	PartEOF
)

var (
	chunkNameRE = regexp.MustCompile(`^([A-Za-z0-9]+)_Chunk([0-9]{6})(\.txt)?$`)
	fileCodeRE  = regexp.MustCompile(`^[A-Za-z0-9]+$`)
)

// ValidFileCode reports whether code has the shape of a File Code (letters
// and digits, such as FL5885807902).
func ValidFileCode(code string) bool { return fileCodeRE.MatchString(code) }

// ParseDropOffPartName parses a drop-off part filename. n is the content
// chunk number (0 for chunk zero and EOF).
func ParseDropOffPartName(name string) (kind DropOffPartKind, fileCode string, n int, err error) {
	if code, ok := strings.CutPrefix(name, "EOF"); ok && ValidFileCode(code) {
		return PartEOF, code, 0, nil
	}
	m := chunkNameRE.FindStringSubmatch(name)
	if m == nil {
		return 0, "", 0, fmt.Errorf("thru: drop-off part name %q: want <FileCode>_Chunk000000.txt, <FileCode>_Chunk<NNNNNN> or EOF<FileCode>", name)
	}
	n, _ = strconv.Atoi(m[2])
	switch {
	case n == 0 && m[3] == ".txt":
		return PartChunkZero, m[1], 0, nil
	case n > 0 && m[3] == "":
		return PartContent, m[1], n, nil
	}
	return 0, "", 0, fmt.Errorf("thru: drop-off part name %q: chunk zero ends in .txt, content chunks are numbered from 000001 without extension", name)
}

// DropOffDisposition is the Content-Disposition of a drop-off part:
// form-data; name="file"; filename="<name>"; size=<n>.
func DropOffDisposition(partName string, size int64) string {
	return fmt.Sprintf(`form-data; name=%q; filename=%q; size=%d`, DropOffFormName, partName, size)
}

// ChunkZero is the JSON body of drop-off chunk zero.
type ChunkZero struct {
	FileSize int64 `json:"fileSize"`
	// FileName is "<FileCode>-<name>" (a dash, unlike the part filename).
	FileName      string `json:"fileName"`
	TargetSiteURL string `json:"TargetSiteUrl"`
}

// PrefixedName returns "<FileCode>-<name>", the form of a file name inside
// Thru (chunk zero's fileName, the pickup's Content-Disposition).
func PrefixedName(fileCode, name string) string { return fileCode + "-" + name }

// SplitPrefixedName splits "<FileCode>-<name>". ok is false when name has no
// File Code prefix.
func SplitPrefixedName(s string) (fileCode, name string, ok bool) {
	code, rest, found := strings.Cut(s, "-")
	if !found || !ValidFileCode(code) || rest == "" {
		return "", s, false
	}
	return code, rest, true
}

// PickupDisposition is the Content-Disposition of a pickup answer:
// attachment; filename="<FileCode>-<original name>", the name quoted as the
// documents show it even where it needs no quotes (a name outside ASCII
// goes as filename*, RFC 2231).
func PickupDisposition(fileCode, name string) string {
	v := mime.FormatMediaType("attachment", map[string]string{"filename": PrefixedName(fileCode, name)})
	if token, ok := strings.CutPrefix(v, "attachment; filename="); ok && !strings.HasPrefix(token, `"`) {
		return `attachment; filename="` + token + `"`
	}
	return v
}

// ParsePickupDisposition returns the File Code and original name from a
// pickup's Content-Disposition.
func ParsePickupDisposition(value string) (fileCode, name string, err error) {
	_, params, err := mime.ParseMediaType(value)
	if err != nil {
		return "", "", fmt.Errorf("thru: pickup Content-Disposition %q: %v", value, err)
	}
	fn, ok := params["filename"]
	if !ok {
		return "", "", fmt.Errorf("thru: pickup Content-Disposition %q has no filename", value)
	}
	code, rest, ok := SplitPrefixedName(fn)
	if !ok {
		return "", "", fmt.Errorf("thru: pickup file name %q has no <FileCode>- prefix", fn)
	}
	return code, rest, nil
}

// EndpointPath addresses a source flow endpoint in the Content API:
// "flow:{FlowCode}/endpoint:{EndpointCode}/flowendpoint:{Id}".
type EndpointPath struct {
	FlowCode     string
	EndpointCode string
	ID           string
}

func (p EndpointPath) String() string {
	return "flow:" + p.FlowCode + "/endpoint:" + p.EndpointCode + "/flowendpoint:" + p.ID
}

var (
	endpointPathRE = regexp.MustCompile(`^flow:([A-Za-z0-9_-]+)/endpoint:([A-Za-z0-9_-]+)/flowendpoint:([A-Za-z0-9_-]+)$`)
	// ErrBadEndpointPath is wrapped by ParseEndpointPath's errors.
	ErrBadEndpointPath = errors.New("thru: malformed endpoint path")
)

// ParseEndpointPath parses an endpoint path. Codes and the id are letters,
// digits, '_' and '-'.
func ParseEndpointPath(s string) (EndpointPath, error) {
	m := endpointPathRE.FindStringSubmatch(s)
	if m == nil {
		return EndpointPath{}, fmt.Errorf("%w %q: want flow:{FlowCode}/endpoint:{EndpointCode}/flowendpoint:{Id}", ErrBadEndpointPath, s)
	}
	return EndpointPath{FlowCode: m[1], EndpointCode: m[2], ID: m[3]}, nil
}

// FileMetadata is the Content API's file metadata JSON.
type FileMetadata struct {
	EndpointPath string         `json:"endpointPath"`
	Attributes   FileAttributes `json:"attributes"`
}

// FileAttributes are a file's attributes in FileMetadata.
type FileAttributes struct {
	FileName string `json:"fileName"`
	FileTime string `json:"fileTime,omitempty"` // FileTimeLayout
	Path     string `json:"path,omitempty"`     // "\\dir\\sub"
}

// ChunkMeta is the first part of an upload-session chunk PUT, and one entry
// of SessionStatus.Chunks.
type ChunkMeta struct {
	SequenceNumber int   `json:"sequenceNumber"` // from 1
	Size           int64 `json:"size"`
}

// Upload session states.
const (
	SessionOpen      = "open"
	SessionCommitted = "committed"
	SessionAborted   = "aborted"
)

// SessionStatus is the answer of GET Upload_Sessions/{id}.
type SessionStatus struct {
	TransferID string        `json:"transferId"`
	State      string        `json:"state"`
	Chunks     []ChunkMeta   `json:"chunks"`
	Metadata   *FileMetadata `json:"metadata,omitempty"`
}

// Preflight is the answer of OPTIONS Content.
type Preflight struct {
	// Accepted is false when an endpoint rule refuses the file; the seed
	// does not promise it, so absent means accepted (see Refused).
	Accepted         *bool  `json:"accepted,omitempty"`
	Reason           string `json:"reason,omitempty"`
	MaxChunkSize     int64  `json:"maxChunkSize"`
	SimpleUploadURL  string `json:"simpleUploadUrl"`
	ChunkedUploadURL string `json:"chunkedUploadUrl"`
}

// Refused reports whether the preflight answer says no.
func (p Preflight) Refused() bool { return p.Accepted != nil && !*p.Accepted }

// UploadResult answers a simple upload and a session Commit.
type UploadResult struct {
	FileCode string `json:"fileCode"`
	Size     int64  `json:"size"`
}

// Abort statuses of AbortRequest.
const (
	AbortError     = 0
	AbortCancelled = 1
)

// AbortRequest is the body of POST Upload_Sessions/{id}/Abort.
type AbortRequest struct {
	Status  int    `json:"status"`
	Message string `json:"message"`
}

// Flow outcome values (the same numbers as pipeline.Status).
const (
	OutcomePassed = 1
	OutcomeFailed = 2
	OutcomeMixed  = 3
)

// FlowOutcome is the body of POST FlowOutcome.
type FlowOutcome struct {
	FileCode                   string   `json:"fileCode"`
	FlowOutcome                int      `json:"flowOutcome"`
	FlowInstanceCode           string   `json:"flowInstanceCode"`
	BatchTotalRecordCount      int      `json:"batchTotalRecordCount"`
	BatchFailedRecordCount     int      `json:"batchFailedRecordCount"`
	ActivityMessage            string   `json:"ActivityMessage"`
	ActivityDetail             string   `json:"ActivityDetail"`
	SelectiveDropOffRecipients []string `json:"SelectiveDropOffRecipients,omitempty"`
}

// Organization identifies a Thru participant in FileInfo.
type Organization struct {
	ParticipantCode string `json:"participantCode" yaml:"participantCode"`
	ParticipantType int    `json:"participantType" yaml:"participantType"` // -1 = None
	ExternalCode    string `json:"externalCode" yaml:"externalCode"`       // e.g. a DUNS number
	Name            string `json:"name" yaml:"name"`
}

// FileInfo is the answer of GET FileMetadata/<FileCode>.
type FileInfo struct {
	FileCode           string       `json:"fileCode"`
	FileName           string       `json:"fileName"`
	FileSize           int64        `json:"fileSize"`
	FlowCode           string       `json:"flowCode"`
	FlowName           string       `json:"flowName,omitempty"`
	FileStatus         int          `json:"fileStatus"`         // -1 = None
	FileProcessingType int          `json:"fileProcessingType"` // -1 = None
	FlowTool           int          `json:"flowTool"`           // 0 = All
	Source             Organization `json:"sourceOrganization"`
	RelatedFileCode    string       `json:"relatedFileCode,omitempty"`
	RelatedFileName    string       `json:"relatedFileName,omitempty"`
	// Raw is the whole answer, for fields this type does not name.
	Raw []byte `json:"-"`
}
