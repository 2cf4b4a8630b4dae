package check_test

import "io"

var ioEOF = io.EOF
