package proxy_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/reprise-tool/reprise/capture/proxy"
)

// A proxy that terminates TLS with a throwaway certificate: the client
// trusts that certificate alone, and the recording counts the connection
// by its TLS parameters.
func ExampleWithListenTLS() {
	service := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hello")
	}))
	defer service.Close()

	cert, err := proxy.SelfSigned("shop.test")
	if err != nil {
		panic(err)
	}
	p, err := proxy.New(service.URL, proxy.WithListenTLS(&tls.Config{Certificates: []tls.Certificate{cert}}))
	if err != nil {
		panic(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	addr, served, err := p.Start(ctx, "127.0.0.1:0", false)
	if err != nil {
		panic(err)
	}

	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(proxy.CertPEM(cert))
	client := &http.Client{Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: "shop.test", NextProtos: []string{"http/1.1"}},
	}}
	resp, err := client.Get("https://" + addr + "/greeting")
	if err != nil {
		panic(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	client.CloseIdleConnections()
	fmt.Println("client got:", string(body), "over", resp.Proto)

	x, _ := p.Next()
	fmt.Println("recorded:", x.Request.Method, x.Request.Target, x.Response.Status, string(x.Response.Body))
	stop()
	served()
	for kind := range p.Counters().TLS {
		fmt.Println("tls:", strings.HasSuffix(kind, "sni=shop.test alpn=http/1.1"))
	}
	// Output:
	// client got: hello over HTTP/1.1
	// recorded: GET /greeting 200 hello
	// tls: true
}
