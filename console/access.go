package console

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"

	"go.yaml.in/yaml/v3"
	"golang.org/x/crypto/bcrypt"
)

// Role is what a console user may do.
type Role string

// The roles. A viewer sees everything; an operator may also replay.
const (
	RoleViewer   Role = "viewer"
	RoleOperator Role = "operator"
)

// Access says who may use the console: users who log in with a password,
// and tokens that programs send as "Authorization: Bearer TOKEN". Neither
// is stored in the clear: passwords as bcrypt hashes (HashPassword, or
// "runner console hash-password"), tokens as their hex SHA-256 (NewToken,
// or "runner console new-token").
type Access struct {
	Users  []User  `yaml:"users"`
	Tokens []Token `yaml:"tokens"`
}

// User is a person who logs in with a name and password.
type User struct {
	Name string `yaml:"name"`
	// Password is the bcrypt hash of the password ($2a$, $2b$ or $2y$).
	Password string `yaml:"password"`
	Role     Role   `yaml:"role"`
}

// Token lets a program in without a session.
type Token struct {
	Name string `yaml:"name"` // who uses it, for the audit trail
	// SHA256 is the hex SHA-256 of the token.
	SHA256 string `yaml:"sha256"`
	Role   Role   `yaml:"role"`
}

// LoadAccess reads an access file (YAML with users: and tokens:) and
// checks it.
func LoadAccess(path string) (*Access, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("console access file: %w", err)
	}
	var a Access
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&a); err != nil {
		return nil, fmt.Errorf("console access file %s: %v (want users: [{name, password, role}] and tokens: [{name, sha256, role}])", path, err)
	}
	if err := a.Check(); err != nil {
		return nil, fmt.Errorf("console access file %s: %w", path, err)
	}
	return &a, nil
}

// Check reports the first mistake in a: a name missing or used twice, a
// role other than viewer or operator, a password that is not a bcrypt
// hash, a token that is not a hex SHA-256, or nobody at all.
func (a *Access) Check() error {
	if len(a.Users)+len(a.Tokens) == 0 {
		return errors.New("no users and no tokens: nobody could log in")
	}
	names := map[string]string{}
	seen := func(what, name string) error {
		if name == "" {
			return fmt.Errorf("%s: name is empty", what)
		}
		if other, dup := names[name]; dup {
			return fmt.Errorf("%s: name %q is also used by %s: give each its own (the audit trail names who replayed)", what, name, other)
		}
		names[name] = what
		return nil
	}
	for i, u := range a.Users {
		what := fmt.Sprintf("users[%d]", i)
		if err := seen(what, u.Name); err != nil {
			return err
		}
		if _, err := bcrypt.Cost([]byte(u.Password)); err != nil {
			return fmt.Errorf("%s (%s): password is not a bcrypt hash; make one with \"runner console hash-password\"", what, u.Name)
		}
		if err := u.Role.check(what, u.Name); err != nil {
			return err
		}
	}
	for i, t := range a.Tokens {
		what := fmt.Sprintf("tokens[%d]", i)
		if err := seen(what, t.Name); err != nil {
			return err
		}
		if b, err := hex.DecodeString(t.SHA256); err != nil || len(b) != sha256.Size {
			return fmt.Errorf("%s (%s): sha256 is not 64 hex digits; make a token with \"runner console new-token\"", what, t.Name)
		}
		if err := t.Role.check(what, t.Name); err != nil {
			return err
		}
	}
	return nil
}

func (r Role) check(what, name string) error {
	if r != RoleViewer && r != RoleOperator {
		return fmt.Errorf("%s (%s): role %q: want viewer or operator", what, name, r)
	}
	return nil
}

// dummyHash is compared against when a user name is unknown, so that the
// answer takes as long as for a wrong password.
var dummyHash, _ = bcrypt.GenerateFromPassword([]byte("no such user"), bcrypt.DefaultCost)

// login returns the user whose name and password these are.
func (a *Access) login(name, password string) (User, bool) {
	for _, u := range a.Users {
		if u.Name == name {
			ok := bcrypt.CompareHashAndPassword([]byte(u.Password), []byte(password)) == nil
			return u, ok
		}
	}
	_ = bcrypt.CompareHashAndPassword(dummyHash, []byte(password)) // only for the time it takes
	return User{}, false
}

// token returns the token whose hash matches t.
func (a *Access) token(t string) (Token, bool) {
	sum := sha256.Sum256([]byte(t))
	var found Token
	ok := false
	for _, k := range a.Tokens {
		want, _ := hex.DecodeString(k.SHA256)
		if subtle.ConstantTimeCompare(sum[:], want) == 1 {
			found, ok = k, true
		}
	}
	return found, ok
}

// HashPassword returns the bcrypt hash of password for an access file.
func HashPassword(password string) (string, error) {
	if len(password) < 8 {
		return "", errors.New("the password is shorter than 8 characters")
	}
	h, err := bcrypt.GenerateFromPassword([]byte(password), 12)
	if err != nil {
		return "", fmt.Errorf("hashing the password: %w", err)
	}
	return string(h), nil
}

// NewToken returns a random token (32 bytes, hex) and the hex SHA-256 that
// an access file keeps of it.
func NewToken() (token, sum string, err error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", "", err
	}
	token = hex.EncodeToString(b)
	s := sha256.Sum256([]byte(token))
	return token, hex.EncodeToString(s[:]), nil
}

// bearer returns the token of an "Authorization: Bearer" header, or "".
func bearer(h string) string {
	scheme, t, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(t)
}
