package session

import "testing"

func TestRoute(t *testing.T) {
	tests := []struct{ method, target, want string }{
		{"GET", "/api/items/12345", "GET /api/items/{id}"},                                            // numeric ids
		{"GET", "/api/carts/6f1c2e0a-8d7b-4c1e-9a55-0123456789ab/lines", "GET /api/carts/{id}/lines"}, // UUIDs
		{"GET", "/objects/5f2b9c1de4a7", "GET /objects/{id}"},                                         // hex ids of 8+ chars
		{"GET", "/objects/abcdef1a", "GET /objects/{id}"},                                             // hex with one digit
		{"GET", "/u/aB3dE6gH9jK2mN5p", "GET /u/{id}"},                                                 // opaque mixed tokens
		{"GET", "/api/orders/ord_3f2a9c81d2?x=1", "GET /api/orders/{id}"},                             // opaque id with a prefix
		{"GET", "/api/items?page=2&sort=price", "GET /api/items"},                                     // queries dropped
		{"GET", "/a/b#frag7", "GET /a/b"},                                                             // fragments dropped
		{"GET", "/api/v1/items", "GET /api/v1/items"},                                                 // short version segments stay
		{"GET", "/v2/users", "GET /v2/users"},                                                         // a version is short: kept
		{"GET", "/static/app.js", "GET /static/app.js"},                                               // names stay
		{"GET", "/static/release7.js", "GET /static/release7.js"},                                     // one digit in a name: kept
		{"GET", "/cafe/beef", "GET /cafe/beef"},                                                       // hex-looking words without digits stay
		{"DELETE", "/api/cart/items/7", "DELETE /api/cart/items/{id}"},                                // number
		{"GET", "http://shop.local/api/items/7?x=1", "GET /api/items/{id}"},                           // absolute-form targets
		{"GET", "https://h", "GET /"},
		{"OPTIONS", "*", "OPTIONS *"},
		// gRPC: the route is the method, /package.Service/Method, never folded.
		{"POST", "/shop.v1.Shop/GetOrder", "POST /shop.v1.Shop/GetOrder"},             // a versioned package
		{"POST", "/api.v1beta2.Orders/Get", "POST /api.v1beta2.Orders/Get"},           // two digits in the package
		{"POST", "/k8s.io.api.v1.Pods/List", "POST /k8s.io.api.v1.Pods/List"},         // digits inside parts
		{"POST", "/hash.Hasher/Sha256Sum", "POST /hash.Hasher/Sha256Sum"},             // digits in the method name
		{"POST", "/grpc.health.v1.Health/Check", "POST /grpc.health.v1.Health/Check"}, // the health service
		{"POST", "/shop.v1.Shop/GetOrder?x=12345678", "POST /shop.v1.Shop/GetOrder"},  // a query still goes
		{"GET", "/files.v2/12345678", "GET /files.v2/{id}"},                           // a number is no method name
		{"GET", "/a.b/c/12345678", "GET /a.b/c/{id}"},                                 // three segments: not a method
		{"GET", "/2fa.x/Abc12345", "GET /2fa.x/{id}"},                                 // a part must start with a letter
		{"GET", "", "GET "},
	}
	for _, tt := range tests {
		t.Run(tt.target, func(t *testing.T) {
			if got := Route(tt.method, tt.target); got != tt.want {
				t.Errorf("Route(%s, %q) = %q, want %q", tt.method, tt.target, got, tt.want)
			}
		})
	}
}
