package identity_test

import (
	"fmt"

	"github.com/reprise-tool/reprise/session/identity"
)

// ExampleParseRules reads rules as a repeated --session flag gives them:
// a cookie first, then auto, then the connection as a last resort.
func ExampleParseRules() {
	rules, err := identity.ParseRules("cookie:JSESSIONID", "auto,connection")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(rules)
	_, err = identity.ParseRules("cookie")
	fmt.Println(err)
	// Output:
	// [cookie:JSESSIONID auto connection]
	// session rule "cookie": cookie needs a name, as in cookie:NAME (use auto, cookie:NAME, header:NAME, bearer, jwt-claim:NAME, query:NAME, connection or client)
}
