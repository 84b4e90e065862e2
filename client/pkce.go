package client

import (
	"crypto/rand"
	"encoding/base64"

	"golang.org/x/oauth2"
)

// pkce is an RFC 7636 pair: the verifier stays here, the S256 challenge goes to /authorize.
type pkce struct {
	verifier, challenge string
}

func newPKCE() pkce {
	v := oauth2.GenerateVerifier()
	return pkce{verifier: v, challenge: oauth2.S256ChallengeFromVerifier(v)}
}

// randomString is an unguessable URL-safe string of n random bytes, for state and nonce.
func randomString(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
