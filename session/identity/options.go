package identity

import (
	"errors"
	"fmt"
	"path"
	"time"
)

type options struct {
	rules        []Rule
	loginPaths   []string
	refreshPaths []string
	logoutPaths  []string
	idle         time.Duration
	window       time.Duration
	maxPending   int
	subjectHash  func(string) string // WithRedaction
	claims       ClaimsFunc
}

func defaultOptions() options {
	return options{
		rules:      DefaultRules(),
		idle:       30 * time.Minute,
		window:     2 * time.Second,
		maxPending: 1 << 14,
	}
}

// Option configures a Tracker. Options are checked when the Tracker is
// made, so a bad rule or pattern is reported before any traffic is read.
type Option func(*options) error

// WithRules sets the session extractors, tried in order. An empty list
// keeps the default, auto.
func WithRules(rules ...Rule) Option {
	return func(o *options) error {
		if len(rules) == 0 {
			return nil
		}
		for _, r := range rules {
			if _, err := ParseRule(r.String()); err != nil {
				return err
			}
		}
		o.rules = append([]Rule(nil), rules...)
		return nil
	}
}

// WithRuleText parses rules as the --session flag gives them, e.g.
// "cookie:JSESSIONID" or "auto,connection".
func WithRuleText(texts ...string) Option {
	return func(o *options) error {
		rules, err := ParseRules(texts...)
		if err != nil {
			return err
		}
		o.rules = rules
		return nil
	}
}

func checkPatterns(flag string, patterns []string) error {
	for _, p := range patterns {
		if p == "" || p[0] != '/' {
			return fmt.Errorf("%s %q: a path pattern starts with '/', as in /auth/login or /api/*/token", flag, p)
		}
		if _, err := path.Match(p, ""); err != nil {
			return fmt.Errorf("%s %q: %w (use shell-style patterns: * ? [a-z])", flag, p, err)
		}
	}
	return nil
}

// WithLoginPaths names the paths (shell patterns matched against the path
// without its query, as path.Match does) where credentials are exchanged
// for tokens or a session cookie. They add to the auto rule's own
// recognition of OAuth2 token endpoints and /login-like paths.
func WithLoginPaths(patterns ...string) Option {
	return func(o *options) error {
		if err := checkPatterns("login path", patterns); err != nil {
			return err
		}
		o.loginPaths = append(o.loginPaths, patterns...)
		return nil
	}
}

// WithRefreshPaths names the paths where a session renews its tokens, for
// services that do not use grant_type=refresh_token.
func WithRefreshPaths(patterns ...string) Option {
	return func(o *options) error {
		if err := checkPatterns("refresh path", patterns); err != nil {
			return err
		}
		o.refreshPaths = append(o.refreshPaths, patterns...)
		return nil
	}
}

// WithLogoutPaths names the paths that end a session.
func WithLogoutPaths(patterns ...string) Option {
	return func(o *options) error {
		if err := checkPatterns("logout path", patterns); err != nil {
			return err
		}
		o.logoutPaths = append(o.logoutPaths, patterns...)
		return nil
	}
}

// WithIdleTimeout sets how long (in the traffic's own time) a session may
// go without a request before it is closed and its state forgotten. It
// bounds the tracker's memory by the sessions active within that time.
// The default is 30 minutes, a common server-side session lifetime.
func WithIdleTimeout(d time.Duration) Option {
	return func(o *options) error {
		if d <= 0 {
			return errors.New("idle timeout must be positive (e.g. 30m)")
		}
		o.idle = d
		return nil
	}
}

// WithReorderWindow sets how far (in request start time) Annotate looks
// ahead to put exchanges back in order of their request start before
// tracking them. Capture emits an exchange when its response completes,
// so a long login response may come out after a request that started
// later; the window must exceed the longest response time that matters.
// Zero turns reordering off. The default is 2 seconds.
func WithReorderWindow(d time.Duration) Option {
	return func(o *options) error {
		if d < 0 {
			return errors.New("reorder window must not be negative")
		}
		o.window = d
		return nil
	}
}

// WithMaxPending bounds how many exchanges Annotate holds while
// reordering, whatever the window; the default is 16384, which bounds
// the memory held to that many exchanges (some tens of MB) on a busy
// service where the window would hold more.
func WithMaxPending(n int) Option {
	return func(o *options) error {
		if n < 1 {
			return errors.New("max pending must be at least 1")
		}
		o.maxPending = n
		return nil
	}
}

func matchAny(patterns []string, p string) bool {
	for _, pat := range patterns {
		if ok, _ := path.Match(pat, p); ok {
			return true
		}
	}
	return false
}
