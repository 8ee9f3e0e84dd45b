package ecsfargate

import (
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
}

func newFakeS3(t *testing.T, bucket string) *fakeS3 {
	f := &fakeS3{t: t, bucket: bucket, objects: map[string]bool{}, failKeys: map[string]string{}}
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
	maxKeys := 1000
	if v := get("max-keys"); v != "" {
		maxKeys, _ = strconv.Atoi(v)
	}
	after := get("continuation-token") // the fake's token is the last key returned
	if after == "" {
		after = get("start-after")
	}
	f.mu.Lock()
	f.listCalls++
	var keys []string
	for k := range f.objects {
		if strings.HasPrefix(k, prefix) && k > after {
			keys = append(keys, k)
		}
	}
	f.mu.Unlock()
	sort.Strings(keys)
	res := listBucketResult{Name: f.bucket, Prefix: prefix, MaxKeys: maxKeys, ContinuationToken: get("continuation-token")}
	if len(keys) > maxKeys {
		keys = keys[:maxKeys]
		res.IsTruncated = true
		res.NextContinuationToken = keys[len(keys)-1]
	}
	for _, k := range keys {
		res.Contents = append(res.Contents, listContent{Key: k, LastModified: "2025-01-02T03:04:05.000Z", ETag: `"d41d8cd98f00b204e9800998ecf8427e"`, Size: 42, StorageClass: "STANDARD"})
	}
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
	// S3 refuses a DeleteObjects without an integrity checksum.
	hasChecksum := r.Header.Get("Content-MD5") != ""
	for h := range r.Header {
		if strings.HasPrefix(strings.ToLower(h), "x-amz-checksum-") {
			hasChecksum = true
		}
	}
	if !hasChecksum && !strings.Contains(r.Header.Get("X-Amz-Trailer"), "checksum") {
		f.t.Errorf("DeleteObjects without Content-MD5 or x-amz-checksum-*: %v", r.Header)
	}
	body, _ := io.ReadAll(r.Body)
	var req deleteRequest
	if err := xml.Unmarshal(body, &req); err != nil {
		f.t.Errorf("DeleteObjects body: %v: %.200s", err, body)
		s3Error(w, http.StatusBadRequest, "MalformedXML", "The XML you provided was not well-formed")
		return
	}
	if len(req.Objects) > 1000 {
		f.t.Errorf("DeleteObjects with %d keys (limit 1000)", len(req.Objects))
		s3Error(w, http.StatusBadRequest, "MalformedXML", "too many keys")
		return
	}
	var res deleteResult
	f.mu.Lock()
	f.deleteBatches = append(f.deleteBatches, len(req.Objects))
	for _, o := range req.Objects {
		if code, ok := f.failKeys[o.Key]; ok {
			res.Errors = append(res.Errors, deleteError{Key: o.Key, Code: code, Message: "Access Denied"})
			continue
		}
		delete(f.objects, o.Key) // deleting a missing key is success in S3
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
