package client

import (
	"encoding/base64"
	"strings"
	"testing"
)

// The fingerprint notices changed credentials but is too short to confirm a password guess:
// 2 bytes of Argon2id, so one guess in 65,536 matches whatever the password.
func TestFingerprintIsTooShortToConfirmAGuess(t *testing.T) {
	fp := fingerprintWith([]byte("a fixed salt....."), "member@example.com\x00correct horse")
	_, key, _ := strings.Cut(fp, ":")
	if raw, err := base64.RawStdEncoding.DecodeString(key); err != nil || len(raw) != 2 {
		t.Fatalf("fingerprint %q holds %d bytes of hash, want 2", fp, len(raw))
	}
	if !fingerprintMatches(fp, "member@example.com\x00correct horse") {
		t.Error("the fingerprint does not match its own credentials")
	}
	for _, other := range []string{"correct horse!", "Correct horse", "battery staple"} {
		if fingerprintMatches(fp, "member@example.com\x00"+other) {
			t.Errorf("a change to %q goes unnoticed", other)
		}
	}
}
