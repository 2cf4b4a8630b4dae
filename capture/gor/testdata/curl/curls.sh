#!/bin/sh
# The curl-made traffic: one request per connection through the proxy.
P=$1
C="curl -s -o /dev/null -H Connection:close"
$C http://127.0.0.1:$P/
$C http://127.0.0.1:$P/app.js -H 'Accept-Encoding: gzip'
$C http://127.0.0.1:$P/s.css
$C "http://127.0.0.1:$P/api/items?page=2&q=a%20b"
$C -X POST http://127.0.0.1:$P/api/cart -H 'Content-Type: application/json' --data '{"id":1}'
$C -X POST http://127.0.0.1:$P/api/cart -H 'Transfer-Encoding: chunked' --data-binary 'chunked body'
$C -I http://127.0.0.1:$P/img.png
$C http://127.0.0.1:$P/missing
