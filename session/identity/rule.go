package identity

import (
	"errors"
	"fmt"
	"strings"
)

// RuleKind says where a rule looks for a session's identity.
type RuleKind string

// The rule kinds, as written on the command line before the colon.
const (
	// RuleAuto recognises common cases by itself: well-known session
	// cookies, bearer tokens (JWT or opaque) and a few token headers, with
	// lineage through OAuth2 token endpoints and cookie rotation.
	RuleAuto RuleKind = "auto"
	// RuleCookie uses the value of one named cookie.
	RuleCookie RuleKind = "cookie"
	// RuleHeader uses the value of one named request header.
	RuleHeader RuleKind = "header"
	// RuleBearer uses the Authorization bearer token (and, for a JWT, its
	// sid claim, decoded without verification).
	RuleBearer RuleKind = "bearer"
	// RuleJWTClaim uses one claim of a bearer JWT, decoded without
	// verification.
	RuleJWTClaim RuleKind = "jwt-claim"
	// RuleQuery uses one query parameter of the request target.
	RuleQuery RuleKind = "query"
	// RuleConnection is a fallback: one session per TCP connection.
	RuleConnection RuleKind = "connection"
	// RuleClient is a fallback: one session per client IP address.
	RuleClient RuleKind = "client"
)

// Rule is one session extractor. Rules are tried in order; see Tracker.
type Rule struct {
	Kind RuleKind
	// Name is the cookie, header, claim or query parameter name; empty for
	// auto, bearer, connection and client.
	Name string
}

// String returns the rule in the form ParseRule reads.
func (r Rule) String() string {
	if r.Name == "" {
		return string(r.Kind)
	}
	return string(r.Kind) + ":" + r.Name
}

// fallback reports whether the rule is used only when no other rule found
// anything in a request: a connection or a client address is shared by
// many sessions behind a proxy, so it must never link to a token.
func (r Rule) fallback() bool { return r.Kind == RuleConnection || r.Kind == RuleClient }

// ErrBadRule is returned (wrapped in a *RuleError) for a rule that cannot be
// parsed.
var ErrBadRule = errors.New("bad session rule")

// RuleError names the rule text that could not be parsed and why.
type RuleError struct {
	Text   string
	Reason string
}

func (e *RuleError) Error() string {
	return fmt.Sprintf("session rule %q: %s (use auto, cookie:NAME, header:NAME, bearer, jwt-claim:NAME, query:NAME, connection or client)", e.Text, e.Reason)
}

// Unwrap lets errors.Is(err, ErrBadRule) match.
func (e *RuleError) Unwrap() error { return ErrBadRule }

// DefaultRules is the rule list used when none is given: auto.
func DefaultRules() []Rule { return []Rule{{Kind: RuleAuto}} }

// ParseRule parses one rule such as "cookie:JSESSIONID" or "bearer".
func ParseRule(s string) (Rule, error) {
	text := strings.TrimSpace(s)
	kind, name, hasName := strings.Cut(text, ":")
	k := RuleKind(strings.ToLower(strings.TrimSpace(kind)))
	name = strings.TrimSpace(name)
	switch k {
	case RuleAuto, RuleBearer, RuleConnection, RuleClient:
		if hasName {
			return Rule{}, &RuleError{Text: s, Reason: fmt.Sprintf("%s takes no name", k)}
		}
		return Rule{Kind: k}, nil
	case RuleCookie, RuleHeader, RuleJWTClaim, RuleQuery:
		if name == "" {
			return Rule{}, &RuleError{Text: s, Reason: fmt.Sprintf("%s needs a name, as in %s:NAME", k, k)}
		}
		if strings.ContainsAny(name, " \t\r\n;,=:\"") {
			return Rule{}, &RuleError{Text: s, Reason: fmt.Sprintf("name %q holds a separator character", name)}
		}
		return Rule{Kind: k, Name: name}, nil
	case "":
		return Rule{}, &RuleError{Text: s, Reason: "empty rule"}
	default:
		return Rule{}, &RuleError{Text: s, Reason: fmt.Sprintf("unknown kind %q", kind)}
	}
}

// ParseRules parses a list of rules given as separate strings, each of
// which may itself be comma-separated ("auto,connection"), the way a
// repeated --session flag delivers them. An empty list gives DefaultRules.
func ParseRules(texts ...string) ([]Rule, error) {
	var out []Rule
	for _, t := range texts {
		for _, part := range strings.Split(t, ",") {
			if strings.TrimSpace(part) == "" && strings.TrimSpace(t) == "" {
				continue
			}
			r, err := ParseRule(part)
			if err != nil {
				return nil, err
			}
			out = append(out, r)
		}
	}
	if len(out) == 0 {
		return DefaultRules(), nil
	}
	return out, nil
}
