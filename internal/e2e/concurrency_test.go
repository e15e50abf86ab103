package e2e

import (
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"
)

// TestConcurrentIfMatch sends two PUTs with the same If-Match at once,
// twenty times: exactly one wins (200) and the other gets 412.
func TestConcurrentIfMatch(t *testing.T) {
	t.Parallel()
	c := start(t)
	r := c.doJSON("POST", "/Patient", `{"resourceType":"Patient","active":true}`)
	if r.Status != http.StatusCreated {
		t.Fatalf("create: %d %s", r.Status, r.Body)
	}
	id := idFromLocation(t, r.Header.Get("Location"), "Patient")
	for round := 1; round <= 20; round++ {
		var wg sync.WaitGroup
		statuses := make([]int, 2)
		errs := make([]error, 2)
		start := make(chan struct{})
		for k := range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				body := fmt.Sprintf(`{"resourceType":"Patient","id":%q,"active":true,"name":[{"family":"Writer%d-%d"}]}`, id, round, k)
				r, err := c.try("PUT", "/Patient/"+id, strings.NewReader(body), fmt.Sprintf(`If-Match: W/"%d"`, round))
				if err != nil {
					errs[k] = err
					return
				}
				statuses[k] = r.Status
			}()
		}
		close(start)
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		sort.Ints(statuses)
		if statuses[0] != http.StatusOK || statuses[1] != http.StatusPreconditionFailed {
			t.Fatalf("round %d: statuses %v, want one 200 and one 412", round, statuses)
		}
	}
	if g := c.doJSON("GET", "/Patient/"+id, ""); g.Header.Get("ETag") != `W/"21"` {
		t.Errorf("after 20 rounds ETag %q, want W/\"21\"", g.Header.Get("ETag"))
	}
}
