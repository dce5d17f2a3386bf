package sshd

import (
	"strings"
	"testing"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

func dial(t *testing.T, s *Server, auth ssh.AuthMethod) *ssh.Client {
	t.Helper()
	hk, err := knownhosts.New(s.KnownHostsFile)
	if err != nil {
		t.Fatal(err)
	}
	c, err := ssh.Dial("tcp", s.Addr, &ssh.ClientConfig{User: s.User, Auth: []ssh.AuthMethod{auth}, HostKeyCallback: hk})
	if err != nil {
		t.Fatalf("logging in to %s as %s: %v", s.Addr, s.User, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestKeyLoginSFTPOnly(t *testing.T) {
	s := Start(t)
	c := dial(t, s, ssh.PublicKeys(s.ClientSigner))
	cl, err := sftp.NewClient(c)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	f, err := cl.Create(s.Dir + "/hello.txt")
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte("hello"))
	f.Close()
	if got, ok := s.ReadFile(t, "hello.txt"); !ok || string(got) != "hello" {
		t.Fatalf("ReadFile = %q, %v; want hello", got, ok)
	}
	if got := s.List(t, ""); len(got) != 1 || got[0] != "hello.txt" {
		t.Fatalf("List = %q", got)
	}
	// No shell: any command runs internal-sftp instead, which is not a shell.
	sess, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	out, _ := sess.CombinedOutput("echo shell-works")
	if strings.Contains(string(out), "shell-works") {
		t.Fatalf("the server ran a shell command: %q", out)
	}
}

func TestPasswordLogin(t *testing.T) {
	s := Start(t)
	if s.Password == "" {
		t.Skip("no password user: run ./scripts/sshd.sh as root")
	}
	dial(t, s, ssh.Password(s.Password))
	hk, _ := knownhosts.New(s.KnownHostsFile)
	_, err := ssh.Dial("tcp", s.Addr, &ssh.ClientConfig{User: s.User, Auth: []ssh.AuthMethod{ssh.Password("wrong")}, HostKeyCallback: hk})
	if err == nil {
		t.Fatal("a wrong password was accepted")
	}
}
