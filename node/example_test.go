package node_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/sluicedb/sluice/node"
)

// A node embedded in a program, used through Do with Redis's commands.
func ExampleNode_Do() {
	n, err := node.New(node.Config{})
	if err != nil {
		panic(err)
	}
	defer n.Close(context.Background())
	ctx := context.Background()
	n.Do(ctx, "SET", "greeting", "hello", "EX", 60)
	v, _ := n.Do(ctx, "GET", "greeting")
	fmt.Printf("%s\n", v)
	// Output: hello
}

// An HTTP middleware that allows each client IP 2 requests per second and
// answers 429 with the standard RateLimit headers past that.
func ExampleNode_Throttle() {
	n, _ := node.New(node.Config{})
	defer n.Close(context.Background())
	limit := node.Limit{Rate: 2, Period: time.Second}
	limited := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ip, _, _ := net.SplitHostPort(r.RemoteAddr)
			res, err := n.Throttle(r.Context(), "rl:ip:"+ip, limit, 1)
			if err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			res.SetHeaders(w.Header())
			if !res.Allowed {
				http.Error(w, "slow down", http.StatusTooManyRequests)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
	srv := httptest.NewServer(limited(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "ok")
	})))
	defer srv.Close()
	for range 3 {
		resp, err := http.Get(srv.URL)
		if err != nil {
			panic(err)
		}
		resp.Body.Close()
		fmt.Println(resp.StatusCode, resp.Header.Get("RateLimit-Remaining"))
	}
	// Output:
	// 200 1
	// 200 0
	// 429 0
}

// Fetch loads a value once however many callers ask for it at the same time,
// and serves it stale while one background refresh runs.
func ExampleNode_Fetch() {
	n, _ := node.New(node.Config{})
	defer n.Close(context.Background())
	slowDatabase := func(ctx context.Context) ([]byte, error) {
		time.Sleep(10 * time.Millisecond)
		return []byte("row 42"), nil
	}
	v, err := n.Fetch(context.Background(), "user:42", slowDatabase, node.FetchOptions{Fresh: time.Minute, Stale: time.Hour})
	fmt.Println(string(v), err)
	// Output: row 42 <nil>
}
