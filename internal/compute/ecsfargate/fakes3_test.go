package ecsfargate

import (
	"encoding/base64"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// fakeS3 is a local server speaking S3's REST protocol (path-style) for
// ListObjectsV2 and DeleteObjects on one bucket.
type fakeS3 struct {
	t      *testing.T
	srv    *httptest.Server
	bucket string

	mu      sync.Mutex
	objects map[string]bool
	// failKeys: DeleteObjects reports these keys as per-key errors (code) and keeps them.
	failKeys map[string]string
	// deleteBatches records the number of keys in each DeleteObjects request.
	deleteBatches []int
	listCalls     int
	// pageSize caps ListObjectsV2 pages below S3's 1000 (to test paging cheaply).
	pageSize int
	// listTokens are the continuation tokens handed out → the last key of their page.
	listTokens map[string]string
	tokenSeq   int
	bodies     map[string][]byte
	puts       int
}

func newFakeS3(t *testing.T, bucket string) *fakeS3 {
	f := &fakeS3{t: t, bucket: bucket, objects: map[string]bool{}, failKeys: map[string]string{},
		pageSize: 1000, listTokens: map[string]string{}}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeS3) put(keys ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, k := range keys {
		f.objects[k] = true
	}
}

func (f *fakeS3) keys() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for k := range f.objects {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func (f *fakeS3) serve(w http.ResponseWriter, r *http.Request) {
	if a := r.Header.Get("Authorization"); !strings.HasPrefix(a, "AWS4-HMAC-SHA256 ") || !strings.Contains(a, "/us-east-1/s3/aws4_request") {
		f.t.Errorf("S3 request not SigV4-signed for s3 in us-east-1: %q", a)
	}
	// A bucket that does not exist: NoSuchBucket, "The specified bucket does not
	// exist" (s3/types.NoSuchBucket), HTTP 404.
	if key, ok := strings.CutPrefix(r.URL.Path, "/"+f.bucket+"/"); ok && key != "" && r.Method == http.MethodPut {
		f.putObject(w, r, key)
		return
	}
	if r.URL.Path != "/"+f.bucket && r.URL.Path != "/"+f.bucket+"/" {
		s3Error(w, http.StatusNotFound, "NoSuchBucket", "The specified bucket does not exist")
		return
	}
	q := r.URL.Query()
	switch {
	case r.Method == http.MethodGet && q.Get("list-type") == "2":
		f.list(w, q)
	case r.Method == http.MethodPost && q.Has("delete"):
		f.delete(w, r)
	default:
		f.t.Errorf("unexpected S3 request %s %s", r.Method, r.URL)
		s3Error(w, http.StatusNotImplemented, "NotImplemented", "not implemented by the fake")
	}
}

// putObject is PutObject (path-style PUT /bucket/key).
func (f *fakeS3) putObject(w http.ResponseWriter, r *http.Request, key string) {
	// "The object key name is a sequence of Unicode characters with UTF-8
	// encoding of up to 1,024 bytes long" (S3 User Guide, Naming Amazon S3
	// objects); longer: KeyTooLongError, 400.
	if len(key) > 1024 {
		s3Error(w, http.StatusBadRequest, "KeyTooLongError", "Your key is too long")
		return
	}
	// "With a single PUT operation, you can upload a single object up to 5 GB
	// in size" (S3 User Guide, Uploading objects); larger: EntityTooLarge.
	body, err := io.ReadAll(io.LimitReader(r.Body, 5<<30+1))
	if err != nil || len(body) > 5<<30 {
		s3Error(w, http.StatusBadRequest, "EntityTooLarge", "Your proposed upload exceeds the maximum allowed size")
		return
	}
	f.mu.Lock()
	f.objects[key] = true
	if f.bodies == nil {
		f.bodies = map[string][]byte{}
	}
	f.bodies[key] = body
	f.puts++
	f.mu.Unlock()
	w.Header().Set("ETag", `"fake-etag"`)
	w.WriteHeader(http.StatusOK)
}

func (f *fakeS3) body(key string) []byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.bodies[key]
}

func s3Error(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/xml")
	w.Header().Set("x-amz-request-id", "FAKEREQUESTID0123")
	w.WriteHeader(status)
	fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?>
<Error><Code>%s</Code><Message>%s</Message><RequestId>FAKEREQUESTID0123</RequestId><HostId>fakehost</HostId></Error>`, code, msg)
}

// ListBucketResult as ListObjectsV2 answers it.
type listBucketResult struct {
	XMLName               xml.Name      `xml:"http://s3.amazonaws.com/doc/2006-03-01/ ListBucketResult"`
	Name                  string        `xml:"Name"`
	Prefix                string        `xml:"Prefix"`
	KeyCount              int           `xml:"KeyCount"`
	MaxKeys               int           `xml:"MaxKeys"`
	IsTruncated           bool          `xml:"IsTruncated"`
	ContinuationToken     string        `xml:"ContinuationToken,omitempty"`
	NextContinuationToken string        `xml:"NextContinuationToken,omitempty"`
	Contents              []listContent `xml:"Contents"`
}

type listContent struct {
	Key          string `xml:"Key"`
	LastModified string `xml:"LastModified"`
	ETag         string `xml:"ETag"`
	Size         int64  `xml:"Size"`
	StorageClass string `xml:"StorageClass"`
}

func (f *fakeS3) list(w http.ResponseWriter, q map[string][]string) {
	get := func(k string) string {
		if v := q[k]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
	prefix := get("prefix")
	// ListObjectsV2Input.MaxKeys: "By default, the action returns up to 1,000 key
	// names. The response might contain fewer keys but will never contain more."
	maxKeys := 1000
	if v := get("max-keys"); v != "" {
		if n, err := strconv.Atoi(v); err == nil && n >= 0 {
			maxKeys = n
		}
	}
	pageSize := min(maxKeys, 1000, f.pageSize)
	// ListObjectsV2Input.ContinuationToken: "ContinuationToken is obfuscated and
	// is not a real key." S3 refuses one it did not issue with 400 InvalidArgument
	// "The continuation token provided is incorrect" (aws/aws-sdk-js-v3#1636).
	after := get("start-after")
	token := get("continuation-token")
	if token != "" {
		last, ok := f.listTokens[token]
		if !ok {
			s3Error(w, http.StatusBadRequest, "InvalidArgument", "The continuation token provided is incorrect")
			return
		}
		after = last
	}
	f.mu.Lock()
	f.listCalls++
	// ListObjectsV2Input.Prefix: "Limits the response to keys that begin with the specified prefix."
	var keys []string
	for k := range f.objects {
		if strings.HasPrefix(k, prefix) && k > after {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	// ListObjectsV2Output.ContinuationToken: "If ContinuationToken was sent with
	// the request, it is included in the response."
	res := listBucketResult{Name: f.bucket, Prefix: prefix, MaxKeys: maxKeys, ContinuationToken: token}
	if len(keys) > pageSize {
		keys = keys[:pageSize]
		// ListObjectsV2Output.NextContinuationToken: "sent when isTruncated is true".
		res.IsTruncated = true
		f.tokenSeq++
		res.NextContinuationToken = base64.StdEncoding.EncodeToString([]byte(fmt.Sprintf("fake-s3-token-%d", f.tokenSeq)))
		f.listTokens[res.NextContinuationToken] = keys[len(keys)-1]
	}
	f.mu.Unlock()
	for _, k := range keys {
		res.Contents = append(res.Contents, listContent{Key: k, LastModified: "2025-01-02T03:04:05.000Z", ETag: `"d41d8cd98f00b204e9800998ecf8427e"`, Size: 42, StorageClass: "STANDARD"})
	}
	// ListObjectsV2Output.KeyCount: "the number of keys returned with this request".
	res.KeyCount = len(res.Contents)
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(w, xml.Header)
	_ = xml.NewEncoder(w).Encode(res)
}

// Delete is DeleteObjects' request body.
type deleteRequest struct {
	XMLName xml.Name `xml:"Delete"`
	Objects []struct {
		Key       string `xml:"Key"`
		VersionId string `xml:"VersionId"`
	} `xml:"Object"`
	Quiet bool `xml:"Quiet"`
}

type deleteResult struct {
	XMLName xml.Name        `xml:"http://s3.amazonaws.com/doc/2006-03-01/ DeleteResult"`
	Deleted []deletedObject `xml:"Deleted"`
	Errors  []deleteError   `xml:"Error"`
}

type deletedObject struct {
	Key string `xml:"Key"`
}

type deleteError struct {
	Key     string `xml:"Key"`
	Code    string `xml:"Code"`
	Message string `xml:"Message"`
}

func (f *fakeS3) delete(w http.ResponseWriter, r *http.Request) {
	// DeleteObjects: "The Content-MD5 request header is required for all
	// Multi-Object Delete requests" (general purpose buckets; an x-amz-checksum-*
	// header or trailer serves as well, ChecksumAlgorithm's doc comment). S3's
	// answer without one is 400 InvalidRequest "Missing required header for this
	// request: Content-MD5" (aws/aws-cli#400).
	hasChecksum := r.Header.Get("Content-MD5") != "" || strings.Contains(r.Header.Get("X-Amz-Trailer"), "checksum")
	for h := range r.Header {
		if strings.HasPrefix(strings.ToLower(h), "x-amz-checksum-") {
			hasChecksum = true
		}
	}
	if !hasChecksum {
		s3Error(w, http.StatusBadRequest, "InvalidRequest", "Missing required header for this request: Content-MD5")
		return
	}
	body, _ := io.ReadAll(r.Body)
	var req deleteRequest
	if err := xml.Unmarshal(body, &req); err != nil {
		s3Error(w, http.StatusBadRequest, "MalformedXML", "The XML you provided was not well-formed or did not validate against our published schema")
		return
	}
	// DeleteObjects: "The request can contain a list of up to 1,000 keys"; S3
	// answers more with MalformedXML (aws/aws-sdk#602).
	if len(req.Objects) > 1000 {
		s3Error(w, http.StatusBadRequest, "MalformedXML", "The XML you provided was not well-formed or did not validate against our published schema")
		return
	}
	var res deleteResult
	f.mu.Lock()
	f.deleteBatches = append(f.deleteBatches, len(req.Objects))
	for _, o := range req.Objects {
		// DeleteObjects: "For each key, Amazon S3 performs a delete operation and
		// returns the result of that delete, success or failure, in the response":
		// a key's failure is an Error entry, not a failed request.
		if code, ok := f.failKeys[o.Key]; ok {
			res.Errors = append(res.Errors, deleteError{Key: o.Key, Code: code, Message: "Access Denied"})
			continue
		}
		// "If the object specified in the request isn't found, Amazon S3 confirms
		// the deletion by returning the result as deleted."
		delete(f.objects, o.Key)
		// "In quiet mode the response includes only keys where the delete operation
		// encountered an error."
		if !req.Quiet {
			res.Deleted = append(res.Deleted, deletedObject{Key: o.Key})
		}
	}
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(w, xml.Header)
	_ = xml.NewEncoder(w).Encode(res)
}

func (f *fakeS3) with(fn func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn()
}

func (f *fakeS3) stats() (listCalls int, batches []int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.listCalls, append([]int(nil), f.deleteBatches...)
}
