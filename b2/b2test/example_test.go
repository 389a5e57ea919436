package b2test_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/b2jet/b2jet/b2/b2test"
)

// A client authorizes at s.URL, then lists with the apiUrl and token it
// got back.
func ExampleNewServer() {
	s := b2test.NewServer()
	defer s.Close()
	bucketID := s.CreateBucket("photos")
	s.AddFiles("photos", "photos/b.jpg", "photos/a.jpg", "photos/cats/fluffy.jpg")

	key := s.MasterKey()
	req, _ := http.NewRequest(http.MethodGet, s.URL+"/b2api/v3/b2_authorize_account", nil)
	req.SetBasicAuth(key.ID, key.Secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		panic(err)
	}
	var auth struct {
		Token   string `json:"authorizationToken"`
		APIInfo struct {
			StorageAPI struct {
				APIURL string `json:"apiUrl"`
			} `json:"storageApi"`
		} `json:"apiInfo"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&auth)
	resp.Body.Close()

	body := fmt.Sprintf(`{"bucketId":%q,"prefix":"photos/","delimiter":"/"}`, bucketID)
	req, _ = http.NewRequest(http.MethodPost, auth.APIInfo.StorageAPI.APIURL+"/b2api/v3/b2_list_file_names", strings.NewReader(body))
	req.Header.Set("Authorization", auth.Token)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	var page struct {
		Files []struct {
			Action   string `json:"action"`
			FileName string `json:"fileName"`
		} `json:"files"`
		NextFileName *string `json:"nextFileName"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&page)
	for _, f := range page.Files {
		fmt.Println(f.Action, f.FileName)
	}
	fmt.Println("next:", page.NextFileName)
	// Output:
	// upload photos/a.jpg
	// upload photos/b.jpg
	// folder photos/cats/
	// next: <nil>
}

// Faults make the fake fail the way B2 does under load.
func ExampleServer_Inject() {
	s := b2test.NewServer()
	defer s.Close()
	s.Inject(b2test.EndpointAuthorize, b2test.Fault{Status: 503, RetryAfter: "2", Times: 1})

	key := s.MasterKey()
	for range 2 {
		req, _ := http.NewRequest(http.MethodGet, s.URL+"/b2api/v4/b2_authorize_account", nil)
		req.SetBasicAuth(key.ID, key.Secret)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			panic(err)
		}
		resp.Body.Close()
		fmt.Printf("%d Retry-After=%q\n", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	fmt.Println("calls:", s.Calls(b2test.EndpointAuthorize))
	// Output:
	// 503 Retry-After="2"
	// 200 Retry-After=""
	// calls: 2
}
