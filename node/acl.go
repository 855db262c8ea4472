package node

import (
	"bufio"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
)

// Users and their permissions (ACL), with Redis's rule syntax for what
// applies to Sluice: on/off, passwords stored as SHA-256 (>pass, <pass,
// #hash, !hash, nopass, resetpass), commands and categories (+get, -@write,
// +@all / allcommands, -@all / nocommands, +client|id), key patterns
// (~prefix:*, allkeys, resetkeys) and reset. Channels do not exist here.
//
// A user is an immutable value; a client holds the user's entry, whose
// pointer ACL SETUSER swaps, so a change applies to connected clients at once
// without any lock on the command path. The default user starts with every
// command and key and, unless requirepass is set, no password.

// aclUser is one version of a user.
type aclUser struct {
	name        string
	enabled     bool
	nopass      bool
	passwords   []string // lower-case hex SHA-256
	allCommands bool
	allowed     []bool   // by Command.id
	cmdRules    []string // as given, for GETUSER and LIST ("+@all", "-@all +get")
	allKeys     bool
	keys        []string // glob patterns
}

// aclEntry is a user's current version.
type aclEntry struct{ p atomic.Pointer[aclUser] }

func (e *aclEntry) user() *aclUser { return e.p.Load() }

// acl holds the users.
type acl struct {
	mu    sync.Mutex
	users map[string]*aclEntry
	file  string // the ACL file, "" when none
}

func newUser(name string) *aclUser {
	return &aclUser{name: name, allowed: make([]bool, len(commandList))}
}

func (a *acl) init(requirepass, file string) error {
	a.users = map[string]*aclEntry{}
	a.file = file
	d := newUser("default")
	for _, rule := range []string{"on", "+@all", "~*"} {
		if err := d.apply(rule); err != nil {
			return err
		}
	}
	if requirepass == "" {
		d.nopass = true
	} else {
		d.passwords = []string{hashPassword(requirepass)}
	}
	e := &aclEntry{}
	e.p.Store(d)
	a.users["default"] = e
	if file != "" {
		return a.load()
	}
	return nil
}

func hashPassword(p string) string {
	sum := sha256.Sum256([]byte(p))
	return hex.EncodeToString(sum[:])
}

func (a *acl) entry(name string) *aclEntry {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.users[name]
}

// authenticate returns the entry of user if pass is one of its passwords.
func (a *acl) authenticate(name, pass []byte) *aclEntry {
	e := a.entry(string(name))
	if e == nil {
		return nil
	}
	u := e.user()
	if !u.enabled {
		return nil
	}
	if u.nopass {
		return e
	}
	h := hashPassword(string(pass))
	ok := 0
	for _, p := range u.passwords {
		ok |= subtle.ConstantTimeCompare([]byte(p), []byte(h))
	}
	if ok == 1 {
		return e
	}
	return nil
}

// defaultOpen reports whether the default user lets anyone in without a password.
func (a *acl) defaultOpen() bool {
	u := a.entry("default").user()
	return u.enabled && u.nopass
}

// setRequirePass makes pass the default user's only password ("" = nopass),
// as CONFIG SET requirepass does in Redis 6 and later.
func (a *acl) setRequirePass(pass string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	e := a.users["default"]
	u := e.user().clone()
	u.passwords, u.nopass = nil, pass == ""
	if pass != "" {
		u.passwords = []string{hashPassword(pass)}
	}
	e.p.Store(u)
}

func (u *aclUser) clone() *aclUser {
	c := *u
	c.passwords = append([]string(nil), u.passwords...)
	c.allowed = append([]bool(nil), u.allowed...)
	c.cmdRules = append([]string(nil), u.cmdRules...)
	c.keys = append([]string(nil), u.keys...)
	return &c
}

// aclError is a rule that cannot be applied, with Redis's wording.
type aclError string

func (e aclError) Error() string { return string(e) }

const (
	errACLSyntax   aclError = "Syntax error"
	errACLUnknown  aclError = "Unknown command or category name in ACL"
	errACLNoPass   aclError = "The password you are trying to remove from the user does not exist"
	errACLBadHash  aclError = "The password hash must be exactly 64 characters and contain only lowercase hexadecimal characters"
	errACLAfterAll aclError = "Adding a pattern after the * pattern (or the 'allkeys' flag) is not valid and does not have any effect. Try 'resetkeys' to start with an empty list of patterns"
)

// apply changes u by one rule.
func (u *aclUser) apply(rule string) error {
	lower := strings.ToLower(rule)
	switch {
	case lower == "on":
		u.enabled = true
	case lower == "off":
		u.enabled = false
	case lower == "nopass":
		u.nopass, u.passwords = true, nil
	case lower == "resetpass":
		u.nopass, u.passwords = false, nil
	case lower == "allkeys" || rule == "~*":
		u.allKeys, u.keys = true, []string{"*"}
	case lower == "resetkeys":
		u.allKeys, u.keys = false, nil
	case lower == "allcommands" || lower == "+@all":
		u.setCommands(func(*Command) bool { return true }, true)
		u.allCommands, u.cmdRules = true, []string{"+@all"}
	case lower == "nocommands" || lower == "-@all":
		u.setCommands(func(*Command) bool { return true }, false)
		u.allCommands, u.cmdRules = false, []string{"-@all"}
	case lower == "reset":
		*u = *newUser(u.name)
		u.cmdRules = []string{"-@all"}
	case lower == "allchannels" || lower == "resetchannels" || strings.HasPrefix(rule, "&"):
		// No Pub/Sub: channel rules are accepted and mean nothing.
	case strings.HasPrefix(rule, ">"):
		u.addPassword(hashPassword(rule[1:]))
	case strings.HasPrefix(rule, "#"):
		h := rule[1:]
		if !isLowerHex64(h) {
			return errACLBadHash
		}
		u.addPassword(h)
	case strings.HasPrefix(rule, "<"), strings.HasPrefix(rule, "!"):
		h := rule[1:]
		if rule[0] == '<' {
			h = hashPassword(h)
		} else if !isLowerHex64(h) {
			return errACLBadHash
		}
		i := indexOf(u.passwords, h)
		if i < 0 {
			return errACLNoPass
		}
		u.passwords = append(u.passwords[:i], u.passwords[i+1:]...)
	case strings.HasPrefix(rule, "~"):
		if u.allKeys {
			return errACLAfterAll
		}
		u.keys = append(u.keys, rule[1:])
	case strings.HasPrefix(rule, "+@"), strings.HasPrefix(rule, "-@"):
		cat := "@" + lower[2:]
		if !knownCategory(cat) {
			return errACLUnknown
		}
		u.setCommands(func(c *Command) bool { return hasCategory(c, cat) }, rule[0] == '+')
		u.noteRule(lower)
	case strings.HasPrefix(rule, "+"), strings.HasPrefix(rule, "-"):
		cmd := findCommand([]byte(lower[1:]))
		if cmd == nil {
			return errACLUnknown
		}
		u.setCommands(func(c *Command) bool { return c == cmd || c.parent == cmd }, rule[0] == '+')
		u.noteRule(lower)
	default:
		return errACLSyntax
	}
	return nil
}

func (u *aclUser) addPassword(h string) {
	u.nopass = false
	if indexOf(u.passwords, h) < 0 {
		u.passwords = append(u.passwords, h)
	}
}

// setCommands allows or denies every command that match selects.
func (u *aclUser) setCommands(match func(*Command) bool, allow bool) {
	all := true
	for _, c := range commandList {
		if match(c) {
			u.allowed[c.id] = allow
		}
		all = all && u.allowed[c.id]
	}
	u.allCommands = all
}

// noteRule records a command rule for GETUSER and LIST.
func (u *aclUser) noteRule(rule string) {
	if len(u.cmdRules) == 0 {
		u.cmdRules = []string{"-@all"}
	}
	u.cmdRules = append(u.cmdRules, rule)
}

func isLowerHex64(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, c := range s {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

func indexOf(list []string, s string) int {
	for i, x := range list {
		if x == s {
			return i
		}
	}
	return -1
}

func knownCategory(cat string) bool {
	if cat == "@all" {
		return true
	}
	for _, c := range aclCategoryOrder {
		if c == cat {
			return true
		}
	}
	return false
}

func hasCategory(c *Command, cat string) bool {
	if cat == "@all" {
		return true
	}
	for _, x := range aclCategories(c) {
		if x == cat {
			return true
		}
	}
	return false
}

// permitted returns "" when the user may run the command on its keys, else
// the NOPERM error.
func (u *aclUser) permitted(cmd *Command, args [][]byte) string {
	if !u.allCommands && !u.allowed[cmd.id] {
		return "NOPERM this user has no permissions to run the '" + cmd.fullName + "' command"
	}
	if u.allKeys {
		return ""
	}
	n := cmd.keyCount(len(args))
keys:
	for i := 0; i < n; i++ {
		key := args[cmd.FirstKey+i*cmd.Step]
		for _, p := range u.keys {
			if globMatch([]byte(p), key, false) {
				continue keys
			}
		}
		return "NOPERM this user has no permissions to access one of the keys used as arguments"
	}
	return ""
}

// describe is the user as ACL LIST shows it.
func (u *aclUser) describe() string {
	parts := []string{"user", u.name}
	if u.enabled {
		parts = append(parts, "on")
	} else {
		parts = append(parts, "off")
	}
	if u.nopass {
		parts = append(parts, "nopass")
	}
	for _, p := range u.passwords {
		parts = append(parts, "#"+p)
	}
	for _, k := range u.keys {
		parts = append(parts, "~"+k)
	}
	if u.name == "default" && u.allKeys && u.allCommands {
		parts = append(parts, "&*")
	} else {
		parts = append(parts, "resetchannels")
	}
	return strings.Join(append(parts, u.commandRules()), " ")
}

func (u *aclUser) commandRules() string {
	if len(u.cmdRules) == 0 {
		return "-@all"
	}
	return strings.Join(u.cmdRules, " ")
}

// setUser applies rules to the user name, creating it, all or nothing.
func (a *acl) setUser(name string, rules []string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	e := a.users[name]
	var u *aclUser
	if e == nil {
		u = newUser(name)
	} else {
		u = e.user().clone()
	}
	for _, r := range rules {
		if err := u.apply(r); err != nil {
			return fmt.Errorf("Error in ACL SETUSER modifier '%s': %w", r, err)
		}
	}
	if e == nil {
		e = &aclEntry{}
		a.users[name] = e
	}
	e.p.Store(u)
	return nil
}

// load replaces the users (but default's existence) with the ACL file's.
func (a *acl) load() error {
	f, err := os.Open(a.file)
	if err != nil {
		return err
	}
	defer f.Close()
	type line struct {
		name  string
		rules []string
	}
	var lines []line
	seen := map[string]bool{}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 || strings.HasPrefix(fields[0], "#") {
			continue
		}
		if fields[0] != "user" || len(fields) < 2 {
			return fmt.Errorf("%s:%d: lines must be 'user <name> <rules...>'", a.file, n)
		}
		if seen[fields[1]] {
			return fmt.Errorf("%s:%d: Duplicate user found. A user can only be defined once in config files", a.file, n)
		}
		seen[fields[1]] = true
		// Check the rules on a scratch user first: a bad file changes nothing.
		u := newUser(fields[1])
		for _, r := range fields[2:] {
			if err := u.apply(r); err != nil {
				return fmt.Errorf("%s:%d: Error in user declaration '%s': %v", a.file, n, r, err)
			}
		}
		lines = append(lines, line{fields[1], fields[2:]})
	}
	if err := sc.Err(); err != nil {
		return err
	}
	a.mu.Lock()
	for name := range a.users {
		if name != "default" && !seen[name] {
			delete(a.users, name)
		}
	}
	a.mu.Unlock()
	for _, l := range lines {
		if l.name == "default" {
			if err := a.setUser("default", append([]string{"reset"}, l.rules...)); err != nil {
				return err
			}
			continue
		}
		a.mu.Lock()
		delete(a.users, l.name)
		a.mu.Unlock()
		if err := a.setUser(l.name, l.rules); err != nil {
			return err
		}
	}
	return nil
}

// save writes every user to the ACL file.
func (a *acl) save() error {
	a.mu.Lock()
	var b strings.Builder
	for _, name := range a.namesLocked() {
		b.WriteString(a.users[name].user().describe())
		b.WriteByte('\n')
	}
	a.mu.Unlock()
	tmp := a.file + ".tmp"
	if err := os.WriteFile(tmp, []byte(b.String()), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, a.file)
}

func (a *acl) namesLocked() []string {
	names := make([]string, 0, len(a.users))
	for n := range a.users {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// The ACL command.

func init() {
	sub := func(name string, arity int, flags Flag, summary string, h func(*Client, [][]byte)) *Command {
		return &Command{Name: name, Arity: arity, Flags: flags | flagAnyState, Since: "6.0.0", Summary: summary, Handler: h}
	}
	register(subcommands(&Command{Name: "acl", Arity: -2, Flags: flagNoCategory, Group: "server", Since: "6.0.0", Summary: "A container for Access List Control commands."},
		sub("setuser", -3, flagAdmin, "Creates and modifies an ACL user and its rules.", cmdACLSetUser),
		sub("getuser", 3, flagAdmin, "Lists the ACL rules of a user.", cmdACLGetUser),
		sub("deluser", -3, flagAdmin, "Deletes ACL users, and terminates their connections.", cmdACLDelUser),
		sub("list", 2, flagAdmin, "Dumps the effective rules in ACL file format.", cmdACLList),
		sub("users", 2, flagAdmin, "Lists all ACL users.", cmdACLUsers),
		sub("whoami", 2, 0, "Returns the authenticated username of the current connection.", cmdACLWhoAmI),
		sub("cat", -2, 0, "Lists the ACL categories, or the commands inside a category.", cmdACLCat),
		sub("load", 2, flagAdmin, "Reloads the rules from the configured ACL file.", cmdACLLoad),
		sub("save", 2, flagAdmin, "Saves the effective ACL rules in the configured ACL file.", cmdACLSave),
	))
}

func cmdACLSetUser(c *Client, args [][]byte) {
	name := string(args[2])
	if strings.ContainsAny(name, " \x00") {
		c.err("ERR Usernames can't contain spaces or null characters")
		return
	}
	rules := make([]string, len(args)-3)
	for i, a := range args[3:] {
		rules[i] = string(a)
	}
	if err := c.n.acl.setUser(name, rules); err != nil {
		c.err("ERR " + err.Error())
		return
	}
	c.w.SimpleString("OK")
}

func cmdACLGetUser(c *Client, args [][]byte) {
	e := c.n.acl.entry(string(args[2]))
	if e == nil {
		c.w.Null()
		return
	}
	u := e.user()
	flags := []string{"off"}
	if u.enabled {
		flags[0] = "on"
	}
	if u.nopass {
		flags = append(flags, "nopass")
	}
	c.w.Map(6)
	c.w.BulkString("flags")
	c.w.Array(len(flags))
	for _, f := range flags {
		c.w.BulkString(f)
	}
	c.w.BulkString("passwords")
	c.w.Array(len(u.passwords))
	for _, p := range u.passwords {
		c.w.BulkString(p)
	}
	c.w.BulkString("commands")
	c.w.BulkString(u.commandRules())
	c.w.BulkString("keys")
	keys := make([]string, len(u.keys))
	for i, k := range u.keys {
		keys[i] = "~" + k
	}
	c.w.BulkString(strings.Join(keys, " "))
	c.w.BulkString("channels")
	c.w.BulkString("")
	c.w.BulkString("selectors")
	c.w.Array(0)
}

func cmdACLDelUser(c *Client, args [][]byte) {
	for _, a := range args[2:] {
		if string(a) == "default" {
			c.err("ERR The 'default' user cannot be removed")
			return
		}
	}
	var gone []*aclEntry
	c.n.acl.mu.Lock()
	for _, a := range args[2:] {
		if e := c.n.acl.users[string(a)]; e != nil {
			gone = append(gone, e)
			delete(c.n.acl.users, string(a))
		}
	}
	c.n.acl.mu.Unlock()
	// Clients authenticated as a deleted user are disconnected, as in Redis.
	for _, other := range c.n.clientsSorted() {
		for _, e := range gone {
			if other.user.Load() == e {
				other.kill(c)
			}
		}
	}
	c.w.Int(int64(len(gone)))
}

func cmdACLList(c *Client, args [][]byte) {
	c.n.acl.mu.Lock()
	names := c.n.acl.namesLocked()
	lines := make([]string, len(names))
	for i, n := range names {
		lines[i] = c.n.acl.users[n].user().describe()
	}
	c.n.acl.mu.Unlock()
	c.w.Array(len(lines))
	for _, l := range lines {
		c.w.BulkString(l)
	}
}

func cmdACLUsers(c *Client, args [][]byte) {
	c.n.acl.mu.Lock()
	names := c.n.acl.namesLocked()
	c.n.acl.mu.Unlock()
	c.w.Array(len(names))
	for _, n := range names {
		c.w.BulkString(n)
	}
}

func cmdACLWhoAmI(c *Client, args [][]byte) {
	c.w.BulkString(c.user.Load().user().name)
}

func cmdACLCat(c *Client, args [][]byte) {
	if len(args) == 2 {
		c.w.Array(len(aclCategoryOrder))
		for _, cat := range aclCategoryOrder {
			c.w.BulkString(cat[1:])
		}
		return
	}
	cat := "@" + strings.ToLower(string(args[2]))
	if !knownCategory(cat) || len(args) > 3 {
		c.err("ERR Unknown category '" + string(args[2]) + "'")
		return
	}
	var names []string
	for _, cmd := range commandList {
		if hasCategory(cmd, cat) && cmd.sub == nil {
			names = append(names, cmd.fullName)
		}
	}
	sort.Strings(names)
	c.w.Array(len(names))
	for _, n := range names {
		c.w.BulkString(n)
	}
}

func cmdACLLoad(c *Client, args [][]byte) {
	if c.n.acl.file == "" {
		c.err("ERR This Sluice instance is not configured to use an ACL file. Start it with --aclfile to load and save users.")
		return
	}
	if err := c.n.acl.load(); err != nil {
		c.err("ERR " + err.Error())
		return
	}
	c.w.SimpleString("OK")
}

func cmdACLSave(c *Client, args [][]byte) {
	if c.n.acl.file == "" {
		c.err("ERR This Sluice instance is not configured to use an ACL file. Start it with --aclfile to load and save users.")
		return
	}
	if err := c.n.acl.save(); err != nil {
		c.err("ERR There was an error trying to save the ACLs: " + err.Error())
		return
	}
	c.w.SimpleString("OK")
}
