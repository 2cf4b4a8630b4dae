//go:build !linux

package main

import "errors"

func runEpoll(string, []*conn) (int, error) {
	return 0, errors.New("the epoll mode is Linux's")
}
