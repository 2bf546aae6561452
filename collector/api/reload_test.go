package api

import (
	"net/http"
	"os"
	"testing"
	"time"
)

// TestReloadTokens: a token added to the file works after ReloadTokens, a
// removed one stops working, and a malformed file keeps the previous
// tokens.
func TestReloadTokens(t *testing.T) {
	var tf string
	ts := startServer(t, openStore(t), time.Now(), func(c *Config) { tf = c.TokensFile })
	const tokNew = "carol-new-token"
	if resp, _ := ts.get(t, tokNew, "/api/v1/sensors"); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("unknown token: %d", resp.StatusCode)
	}
	if resp, _ := ts.get(t, tokBob, "/api/v1/sensors"); resp.StatusCode != http.StatusOK {
		t.Fatalf("bob before reload: %d", resp.StatusCode)
	}
	if err := os.WriteFile(tf, []byte(HashToken(tokNew)+": {subject: carol, roles: [flows:read]}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := ts.ReloadTokens(); err != nil {
		t.Fatal(err)
	}
	if resp, _ := ts.get(t, tokNew, "/api/v1/sensors"); resp.StatusCode != http.StatusOK {
		t.Fatalf("carol after reload: %d", resp.StatusCode)
	}
	if resp, _ := ts.get(t, tokBob, "/api/v1/sensors"); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("bob after removal: %d", resp.StatusCode)
	}
	if err := os.WriteFile(tf, []byte("not-a-hash: {subject: x}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := ts.ReloadTokens(); err == nil {
		t.Fatal("malformed tokens file accepted")
	}
	if resp, _ := ts.get(t, tokNew, "/api/v1/sensors"); resp.StatusCode != http.StatusOK {
		t.Fatalf("carol after a failed reload: %d", resp.StatusCode)
	}
}
