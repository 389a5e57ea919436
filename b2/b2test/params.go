package b2test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// maxBody bounds the request bodies the fake reads.
const maxBody = 1 << 20

// List limits of b2_list_file_names (b2-api.md 2.1).
const (
	DefaultMaxFileCount = 100
	MaxMaxFileCount     = 10000
)

// readJSONBody decodes a POST body into dst. An empty body leaves dst
// alone; JSON nulls leave pointer fields nil.
func readJSONBody(r *http.Request, dst any) *apiError {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody))
	if err != nil {
		return badRequest("reading body: " + err.Error())
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return nil
	}
	if err := json.Unmarshal(body, dst); err != nil {
		return newError(http.StatusBadRequest, CodeBadJSON, "invalid JSON body: "+err.Error())
	}
	return nil
}

// str returns *p, or "" for nil.
func str(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// listBucketsRequest holds the b2_list_buckets parameters.
type listBucketsRequest struct {
	accountID, bucketID, bucketName string
	bucketTypes                     []string
	typesSet                        bool // bucketTypes was given (possibly empty)
}

// parseListBucketsRequest reads GET query parameters or a POST JSON body.
// In a query, bucketTypes may be repeated, comma separated or a JSON array.
func parseListBucketsRequest(r *http.Request) (*listBucketsRequest, *apiError) {
	req := &listBucketsRequest{}
	if r.Method == http.MethodGet {
		q := r.URL.Query()
		req.accountID, req.bucketID, req.bucketName = q.Get("accountId"), q.Get("bucketId"), q.Get("bucketName")
		vs, ok := q["bucketTypes"]
		req.typesSet = ok
		for _, v := range vs {
			if strings.HasPrefix(v, "[") {
				var ts []string
				if err := json.Unmarshal([]byte(v), &ts); err != nil {
					return nil, badRequest("bucketTypes: " + err.Error())
				}
				req.bucketTypes = append(req.bucketTypes, ts...)
				continue
			}
			for t := range strings.SplitSeq(v, ",") {
				if t != "" {
					req.bucketTypes = append(req.bucketTypes, t)
				}
			}
		}
		return req, nil
	}
	var body struct {
		AccountID   *string  `json:"accountId"`
		BucketID    *string  `json:"bucketId"`
		BucketName  *string  `json:"bucketName"`
		BucketTypes []string `json:"bucketTypes"`
	}
	if err := readJSONBody(r, &body); err != nil {
		return nil, err
	}
	req.accountID, req.bucketID, req.bucketName = str(body.AccountID), str(body.BucketID), str(body.BucketName)
	req.bucketTypes, req.typesSet = body.BucketTypes, body.BucketTypes != nil
	return req, nil
}

// listRequest holds the b2_list_file_names parameters.
type listRequest struct {
	bucketID      string
	startFileName string
	maxFileCount  int
	prefix        string
	delimiter     string
}

// parseListRequest reads GET query parameters or a POST JSON body. It
// returns what it could read even with an error, for fault matching.
func parseListRequest(r *http.Request) (*listRequest, *apiError) {
	req := &listRequest{}
	count := ""
	if r.Method == http.MethodGet {
		q := r.URL.Query()
		req.bucketID, req.startFileName = q.Get("bucketId"), q.Get("startFileName")
		req.prefix, req.delimiter = q.Get("prefix"), q.Get("delimiter")
		count = q.Get("maxFileCount")
	} else {
		var body struct {
			BucketID      *string         `json:"bucketId"`
			StartFileName *string         `json:"startFileName"`
			MaxFileCount  json.RawMessage `json:"maxFileCount"`
			Prefix        *string         `json:"prefix"`
			Delimiter     *string         `json:"delimiter"`
		}
		if err := readJSONBody(r, &body); err != nil {
			return req, err
		}
		req.bucketID, req.startFileName = str(body.BucketID), str(body.StartFileName)
		req.prefix, req.delimiter = str(body.Prefix), str(body.Delimiter)
		count = strings.Trim(string(body.MaxFileCount), `"`) // a quoted number is tolerated
		if count == "null" {
			count = ""
		}
	}
	if req.bucketID == "" {
		return req, badRequest("bucketId is required")
	}
	req.maxFileCount = DefaultMaxFileCount
	if count != "" {
		n, err := strconv.Atoi(count)
		switch {
		case err != nil:
			return req, badRequest("maxFileCount is not an integer: " + count)
		case n < 0 || n > MaxMaxFileCount:
			return req, newError(http.StatusBadRequest, CodeOutOfRange,
				fmt.Sprintf("maxFileCount out of range: %d (must be 1..%d)", n, MaxMaxFileCount))
		case n > 0:
			req.maxFileCount = n
		}
	}
	return req, nil
}
