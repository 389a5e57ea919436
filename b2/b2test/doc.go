// Package b2test is an in-process fake of the Backblaze B2 native API for
// tests, benchmarks and sandbox runs, in the spirit of net/http/httptest.
//
// It serves b2_authorize_account, b2_list_buckets and b2_list_file_names
// under /b2api/v1 to /b2api/v4 with the request and response shapes of the
// real service (GET with query parameters or POST with a JSON body, v2 flat,
// v3 grouped and v4 multi-bucket authorize answers, B2 error bodies), and
// lets a test inject what the real service does on a bad day: error
// statuses and codes with Retry-After, non-JSON bodies, dropped
// connections, latency and expired tokens.
//
// Typical use:
//
//	s := b2test.NewServer()
//	defer s.Close()
//	s.CreateBucket("photos")
//	s.AddFiles("photos", "a.jpg", "b.jpg")
//	key := s.MasterKey()
//	// Point the client's realm (and so its apiUrl) at s.URL and authorize
//	// with key.ID and key.Secret.
//	s.Inject(b2test.EndpointListFileNames, b2test.Fault{Status: 503, RetryAfter: "1", Times: 1})
//
// Each bucket keeps its names in a slice sorted by UTF-8 byte order,
// sorted lazily after bulk adds, so a page costs O(log n + page size) and a
// million names are cheap to hold. All methods and the handler are safe for
// concurrent use. The package imports only the standard library and not
// package testing, so a binary may run it as a sandbox backend.
package b2test
