package notify_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"

	"github.com/mftflow/mftflow/pipeline/notify"
)

// A webhook receiver checks the signature on the body as read, then drops
// notifications it has seen: they come at least once, each with the same
// id however often.
func ExampleVerifySignature() {
	secret := "s3cr3t" // the rule's webhook.secret
	var mu sync.Mutex
	seen := map[string]bool{} // keep these somewhere durable in a real receiver

	handler := func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil || !notify.VerifySignature(secret, body, r.Header.Get(notify.HeaderSignature)) {
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		var m notify.Message
		if err := json.Unmarshal(body, &m); err != nil {
			http.Error(w, "not a notification", http.StatusBadRequest)
			return
		}
		mu.Lock()
		repeat := seen[m.ID]
		seen[m.ID] = true
		mu.Unlock()
		if !repeat {
			fmt.Printf("%s: %s %s\n", m.Flow, m.Trigger, m.Name)
		}
		w.WriteHeader(http.StatusNoContent) // 2xx: delivered
	}

	// What mftflow sends, twice (a retry after a lost answer).
	body := `{"id":"5d41402abc4b2a76b9719d911017c592","event":"failed","kind":"acked","flow":"orders","name":"a.csv","outcome":"failed"}`
	for range 2 {
		req := httptest.NewRequest(http.MethodPost, "/hooks/mftflow", strings.NewReader(body))
		req.Header.Set(notify.HeaderSignature, notify.Sign(secret, []byte(body)))
		rec := httptest.NewRecorder()
		handler(rec, req)
		fmt.Println(rec.Code)
	}
	// Output:
	// orders: failed a.csv
	// 204
	// 204
}
