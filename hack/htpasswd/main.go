// Command htpasswd prints an htpasswd line (bcrypt, the only hash CNCF
// distribution accepts) for the user named in its argument and the password
// read from stdin, so the password never shows in a process listing.
//
//	echo -n PASSWORD | go run ./hack/htpasswd USER >> htpasswd
package main

import (
	"bufio"
	"fmt"
	"os"
	"strings"

	"golang.org/x/crypto/bcrypt"
)

func main() {
	if len(os.Args) != 2 || os.Args[1] == "" || strings.Contains(os.Args[1], ":") {
		fmt.Fprintln(os.Stderr, "usage: echo -n PASSWORD | htpasswd USER")
		os.Exit(2)
	}
	pass, err := bufio.NewReader(os.Stdin).ReadString('\n')
	if err != nil && pass == "" {
		fmt.Fprintln(os.Stderr, "htpasswd: read password from stdin:", err)
		os.Exit(1)
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(strings.TrimRight(pass, "\r\n")), bcrypt.DefaultCost)
	if err != nil {
		fmt.Fprintln(os.Stderr, "htpasswd:", err)
		os.Exit(1)
	}
	fmt.Printf("%s:%s\n", os.Args[1], hash)
}
