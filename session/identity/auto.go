package identity

import "strings"

// What the auto rule recognises by itself. The lists are deliberately
// conservative: a cookie or header taken for a session key that is really
// shared between users (a load balancer's stickiness cookie, a locale)
// would merge users, which is worse than missing a session.

// sessionCookieNames are the session cookies of common frameworks,
// compared without regard to case.
var sessionCookieNames = map[string]bool{
	"jsessionid":               true, // Java servlet containers
	"phpsessid":                true, // PHP
	"asp.net_sessionid":        true, // ASP.NET
	".aspnetcore.session":      true, // ASP.NET Core
	".aspnetcore.cookies":      true, // ASP.NET Core cookie authentication
	".aspxauth":                true, // ASP.NET forms authentication
	"connect.sid":              true, // Express (express-session)
	"koa.sess":                 true, // Koa
	"koa:sess":                 true,
	"express:sess":             true, // cookie-session
	"rack.session":             true, // Rack / Sinatra
	"sessionid":                true, // Django
	"session_id":               true,
	"_session_id":              true, // Rails (older)
	"laravel_session":          true, // Laravel
	"session":                  true, // Flask and many others
	"sid":                      true,
	"sess":                     true,
	"cfid":                     false, // ColdFusion uses a pair; CFTOKEN alone is not unique
	"access_token":             true,  // tokens kept in cookies by SPAs
	"auth_token":               true,
	"id_token":                 true,
	"jwt":                      true,
	"token":                    true,
	"authorization":            true,
	"_oauth2_proxy":            true, // oauth2-proxy
	"keycloak_session":         true, // Keycloak
	"keycloak_identity":        true,
	"appsession":               true,
	"shopify_session":          true,
	"wp_session":               true,
	"ci_session":               true, // CodeIgniter
	"cakephp":                  true, // CakePHP
	"symfony":                  true, // Symfony
	"play_session":             true, // Play Framework
	"vertx-web.session":        true, // Vert.x
	"beegosessionid":           true, // Beego
	"gosessionid":              true,
	"_gorilla_csrf":            false, // CSRF, not a session
	"__stripe_sid":             false, // third-party analytics
	"awsalb":                   false, // load balancer stickiness: shared
	"awsalbcors":               false,
	"route":                    false,
	"csrftoken":                false,
	"xsrf-token":               false,
	"django_language":          false,
	"wordpress_test_cookie":    false,
	"wordpress_logged_in":      true,
	"remember_user_token":      true,  // Devise
	"remember_web":             false, // Laravel remember-me: survives logins
	"_identity":                true,  // Yii
	"_csrf":                    false,
	"jwt_token":                true,
	"refresh_token":            true,
	"_forward_auth":            true, // traefik-forward-auth
	"authelia_session":         true, // Authelia
	"grafana_session":          true, // Grafana
	"_shibsession":             true, // Shibboleth (prefix handled below)
	"mod_auth_openidc_session": true, // Apache mod_auth_openidc
}

// isSessionCookie reports whether the auto rule takes a cookie for a
// session key: a known name, a "*_session"/"*_sess"/"*sessid" suffix (Rails
// "_app_session", Drupal "SESS<hash>", classic ASP "ASPSESSIONID<x>"), with
// "__Host-" and "__Secure-" prefixes ignored.
func isSessionCookie(name string) bool {
	n := strings.ToLower(name)
	n = strings.TrimPrefix(n, "__host-")
	n = strings.TrimPrefix(n, "__secure-")
	if v, ok := sessionCookieNames[n]; ok {
		return v
	}
	switch {
	case strings.HasSuffix(n, "_session"), strings.HasSuffix(n, "-session"), strings.HasSuffix(n, ".session"),
		strings.HasSuffix(n, "_sess"), strings.HasSuffix(n, "sessid"), strings.HasSuffix(n, "sessionid"),
		strings.HasSuffix(n, "_sid"), strings.HasSuffix(n, "_token") && !strings.Contains(n, "csrf") && !strings.Contains(n, "xsrf"):
		return true
	case strings.HasPrefix(n, "aspsessionid"), strings.HasPrefix(n, "wordpress_logged_in_"),
		strings.HasPrefix(n, "_shibsession_"), strings.HasPrefix(n, "sess") && len(n) > 20, // Drupal SESS<32 hex>
		strings.HasPrefix(n, "ssess") && len(n) > 20:
		return true
	}
	return false
}

// sessionHeaderNames are request headers that carry a session token in
// APIs that do not use Authorization.
var sessionHeaderNames = []string{
	"X-Auth-Token", "X-Session-Token", "X-Session-Id", "X-Access-Token", "X-Api-Session",
}

// Path heuristics, compared with the last path segment: what a request
// to such a path may be.
const (
	segLogin uint8 = 1 << iota
	segLogout
	segRefresh
)

var pathSegments = map[string]uint8{
	"login": segLogin, "signin": segLogin, "sign_in": segLogin, "sign-in": segLogin, "log-in": segLogin,
	"authenticate": segLogin, "session": segLogin, "sessions": segLogin, "token": segLogin, "tokens": segLogin,
	"logout": segLogout, "signout": segLogout, "sign_out": segLogout, "sign-out": segLogout, "log-out": segLogout,
	"logoff": segLogout, "revoke": segLogout, "end_session": segLogout,
	"refresh": segRefresh, "refresh_token": segRefresh, "refresh-token": segRefresh, "renew": segRefresh,
}
