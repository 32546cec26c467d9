package client

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"filippo.io/nistec"
)

// Commitment is the public commitment of one issuing key: H = k·G on P-256
// with G the standard base point (verify/PROTOCOL.md §8). A client checks
// the issuer's batch proof against it, which shows that its tokens were
// signed with the same key as everyone else's (no key per user to tag
// them with).
type Commitment struct {
	// Version names the key, as the issuer's "version" member names the
	// key that signed a response. A commitment without a version that is
	// the only one given matches every response.
	Version string
	// H is the SEC1 encoding of H, compressed or uncompressed.
	H []byte
	// Expiry, when not zero, is when the commitment stops being
	// accepted, as the extension refuses an expired one.
	Expiry time.Time
}

// maxCommitmentDepth bounds the nesting ParseCommitments walks.
const maxCommitmentDepth = 3

// ParseCommitments reads issuer commitments in the shape of the browser
// extension's commitments file (retrieveCommitments and cacheCommitments
// in src/ext/issuance.js of privacypass/challenge-bypass-extension v2.0.6;
// getCommitment in src/background/providers/cloudflare.ts, v3.0.6). A
// commitment is a JSON object
//
//	{"G":"<b64 SEC1>","H":"<b64 SEC1>","expiry":"<RFC 3339>","version":"<v>"}
//
// where only H is required; G, when present, must be the standard base
// point. Commitments may come alone, in an array, or as the values of an
// object keyed by version, e.g. {"1.0": {"H": ...}}, itself possibly
// wrapped once more, e.g. {"CF": {"1.0": {...}}} or {"commitments": [...]}:
// an object without "H" is walked into, up to three levels deep, and a key
// names the version of a commitment without a "version" member. Other
// members ("sig", ...) are ignored. Two commitments of one version must
// have the same H.
func ParseCommitments(data []byte) ([]Commitment, error) {
	var root any
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&root); err != nil {
		return nil, errors.New("ppredeem client: the commitments are not JSON")
	}
	if dec.More() {
		return nil, errors.New("ppredeem client: the commitments are followed by other data")
	}
	var out []Commitment
	if err := walkCommitments(root, "", 0, &out); err != nil {
		return nil, fmt.Errorf("ppredeem client: commitments: %w", err)
	}
	if len(out) == 0 {
		return nil, errors.New("ppredeem client: the commitments hold no object with an \"H\" member")
	}
	return out, nil
}

func walkCommitments(v any, key string, depth int, out *[]Commitment) error {
	if depth > maxCommitmentDepth {
		return nil
	}
	switch v := v.(type) {
	case []any:
		for _, e := range v {
			if err := walkCommitments(e, key, depth+1, out); err != nil {
				return err
			}
		}
	case map[string]any:
		if _, ok := v["H"]; !ok {
			keys := make([]string, 0, len(v))
			for k := range v {
				keys = append(keys, k)
			}
			slices.Sort(keys) // a stable order for the errors
			for _, k := range keys {
				if err := walkCommitments(v[k], k, depth+1, out); err != nil {
					return err
				}
			}
			return nil
		}
		c, err := commitmentOf(v, key)
		if err != nil {
			return err
		}
		for _, o := range *out {
			if o.Version == c.Version && !bytes.Equal(canonicalPoint(o.H), canonicalPoint(c.H)) {
				return fmt.Errorf("version %.64q has two different H", c.Version)
			}
		}
		*out = append(*out, c)
	}
	return nil
}

// commitmentOf reads one commitment object; key is the name it was found
// under, its version unless it has a "version" member.
func commitmentOf(obj map[string]any, key string) (Commitment, error) {
	c := Commitment{Version: key}
	str := func(name string) (string, bool, error) {
		v, ok := obj[name]
		if !ok || v == nil {
			return "", false, nil
		}
		s, isString := v.(string)
		if !isString {
			return "", false, fmt.Errorf("the member %q of the commitment %.64q is not a string", name, key)
		}
		return s, true, nil
	}
	if v, ok, err := str("version"); err != nil {
		return c, err
	} else if ok {
		c.Version = v
	}
	h, _, err := str("H")
	if err != nil {
		return c, err
	}
	if c.H, err = decodeBase64(h); err != nil {
		return c, fmt.Errorf("the H of version %.64q is not base64", c.Version)
	}
	if p, err := nistec.NewP256Point().SetBytes(c.H); err != nil || p.IsInfinity() == 1 {
		return c, fmt.Errorf("the H of version %.64q is not a point of P-256", c.Version)
	}
	if g, ok, err := str("G"); err != nil {
		return c, err
	} else if ok {
		b, err := decodeBase64(g)
		if err != nil || !bytes.Equal(canonicalPoint(b), nistec.NewP256Point().SetGenerator().Bytes()) {
			return c, fmt.Errorf("the G of version %.64q is not P-256's base point", c.Version)
		}
	}
	if e, ok, err := str("expiry"); err != nil {
		return c, err
	} else if ok && e != "" {
		if c.Expiry, err = time.Parse(time.RFC3339, e); err != nil {
			return c, fmt.Errorf("the expiry of version %.64q is not an RFC 3339 time", c.Version)
		}
	}
	return c, nil
}

// canonicalPoint is the uncompressed encoding of the SEC1 point b, or nil.
func canonicalPoint(b []byte) []byte {
	p, err := nistec.NewP256Point().SetBytes(b)
	if err != nil {
		return nil
	}
	return p.Bytes()
}

// commitmentFor picks the commitment of the key version a response names:
// the one of that version; for a response without a version, the one of
// version "1.0" (the extension's default, checkVersion in
// src/ext/issuance.js, v2.0.6); failing both, a sole commitment without a
// version, whatever the response names.
// An expired commitment is refused.
func commitmentFor(cs []Commitment, version string, now time.Time) (*nistec.P256Point, error) {
	var pick *Commitment
	for i := range cs {
		if cs[i].Version == version {
			pick = &cs[i]
			break
		}
	}
	if pick == nil && version == "" {
		for i := range cs {
			if cs[i].Version == "1.0" {
				pick = &cs[i]
				break
			}
		}
	}
	if pick == nil && len(cs) == 1 && cs[0].Version == "" {
		pick = &cs[0]
	}
	if pick == nil {
		return nil, fmt.Errorf("no commitment for the key version %.64q", version)
	}
	if !pick.Expiry.IsZero() && !now.Before(pick.Expiry) {
		return nil, fmt.Errorf("the commitment of the key version %.64q expired at %s", version, pick.Expiry.Format(time.RFC3339))
	}
	H, err := nistec.NewP256Point().SetBytes(pick.H)
	if err != nil || H.IsInfinity() == 1 {
		return nil, fmt.Errorf("the commitment of the key version %.64q is not a point of P-256", version)
	}
	return H, nil
}
