package policy

import (
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// Request is what a policy is evaluated against.
type Request struct {
	// Principals are the ARNs the caller is known as: its own and, for an
	// account administrator, the account root's (RootARN).
	Principals []string
	// Action, e.g. "kms:Decrypt" (any case).
	Action string
	// Resource is the ARN of the key.
	Resource string
	// Context holds the request's condition keys by lower-case name, e.g.
	// "kms:encryptioncontext:s3seal:bucket" or "kms:encryptioncontextkeys"
	// (several values). A key absent from the map is absent from the
	// request.
	Context map[string][]string
}

// Decision is the outcome of an evaluation.
type Decision int

// Decisions. ImplicitDeny means no statement applied.
const (
	ImplicitDeny Decision = iota
	Allowed
	ExplicitDeny
)

func (d Decision) String() string {
	switch d {
	case Allowed:
		return "Allow"
	case ExplicitDeny:
		return "ExplicitDeny"
	}
	return "ImplicitDeny"
}

// Evaluate decides r: ExplicitDeny if a Deny statement applies, else
// Allowed if an Allow statement applies, else ImplicitDeny.
func (d *Document) Evaluate(r *Request) Decision {
	action := strings.ToLower(r.Action)
	dec := ImplicitDeny
	for _, s := range d.Statements {
		if !s.applies(r, action) {
			continue
		}
		if s.Effect == Deny {
			return ExplicitDeny
		}
		dec = Allowed
	}
	return dec
}

func (s *Statement) applies(r *Request, action string) bool {
	return s.matchPrincipal(r.Principals) &&
		s.matchAction(action) &&
		s.matchResource(r.Resource) &&
		s.matchConditions(r.Context)
}

func (s *Statement) matchPrincipal(callers []string) bool {
	m := false
	for _, p := range s.Principals {
		if p == "*" || slices.Contains(callers, p) {
			m = true
			break
		}
	}
	return m != s.NotPrincipal
}

func (s *Statement) matchAction(action string) bool {
	m := false
	for _, a := range s.Actions {
		if Match(a, action) {
			m = true
			break
		}
	}
	return m != s.NotAction
}

func (s *Statement) matchResource(res string) bool {
	m := false
	for _, p := range s.Resources {
		if Match(p, res) {
			m = true
			break
		}
	}
	return m != s.NotResource
}

func (s *Statement) matchConditions(ctx map[string][]string) bool {
	for _, c := range s.Conditions {
		vals, present := ctx[c.Key]
		if !c.holds(vals, present && len(vals) > 0) {
			return false
		}
	}
	return true
}

// holds evaluates one condition key against the request's values.
func (c *Condition) holds(vals []string, present bool) bool {
	if c.op == opNull {
		for _, v := range c.Values {
			if strings.EqualFold(v, "true") != present {
				return true
			}
		}
		return false
	}
	if !present {
		switch {
		case c.ifExists, c.qualifier == qualAll:
			return true
		case c.qualifier == qualAny:
			return false
		}
		return c.negated
	}
	// ok reports whether one request value satisfies the operator.
	ok := func(v string) bool { return c.matchAny(v) != c.negated }
	switch c.qualifier {
	case qualAll:
		for _, v := range vals {
			if !ok(v) {
				return false
			}
		}
		return true
	case qualAny:
		return slices.ContainsFunc(vals, ok)
	}
	if c.negated {
		for _, v := range vals {
			if !ok(v) {
				return false
			}
		}
		return true
	}
	return slices.ContainsFunc(vals, ok)
}

// matchAny reports whether v matches one of the condition's values under
// the positive form of its operator.
func (c *Condition) matchAny(v string) bool {
	switch c.op {
	case opStringEquals:
		return slices.Contains(c.Values, v)
	case opStringEqualsIgnoreCase, opBool:
		for _, p := range c.Values {
			if strings.EqualFold(p, v) {
				return true
			}
		}
	case opStringLike:
		for _, p := range c.Values {
			if Match(p, v) {
				return true
			}
		}
	case opNumericEquals, opNumericLessThan, opNumericLessThanEquals, opNumericGreaterThan, opNumericGreaterThanEquals:
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return false
		}
		for _, p := range c.nums {
			if compare(c.op-opNumericEquals, f < p, f == p) {
				return true
			}
		}
	case opDateEquals, opDateLessThan, opDateLessThanEquals, opDateGreaterThan, opDateGreaterThanEquals:
		t, ok := parseDate(v)
		if !ok {
			return false
		}
		for _, p := range c.times {
			if compare(c.op-opDateEquals, t.Before(p), t.Equal(p)) {
				return true
			}
		}
	case opIPAddress:
		a, err := netip.ParseAddr(v)
		if err != nil {
			return false
		}
		for _, n := range c.nets {
			if n.Contains(a.Unmap()) || n.Contains(a) {
				return true
			}
		}
	}
	return false
}

// compare applies the comparison at offset rel from an Equals operator
// (Equals, LessThan, LessThanEquals, GreaterThan, GreaterThanEquals, in
// that order for both numbers and dates).
func compare(rel opKind, less, equal bool) bool {
	switch rel {
	case 0:
		return equal
	case 1:
		return less
	case 2:
		return less || equal
	case 3:
		return !less && !equal
	}
	return !less
}

// Match reports whether s matches pattern, where * matches any run of
// characters (also none) and ? any one character. It compares bytes:
// lower-case both sides first for a case-insensitive match.
func Match(pattern, s string) bool {
	if pattern == "*" {
		return true
	}
	// Iterative glob with one backtrack point: linear in practice, never
	// exponential.
	p, i := 0, 0
	star, mark := -1, 0
	for i < len(s) {
		switch {
		case p < len(pattern) && (pattern[p] == '?' || pattern[p] == s[i]):
			p++
			i++
		case p < len(pattern) && pattern[p] == '*':
			star, mark = p, i
			p++
		case star >= 0:
			p = star + 1
			mark++
			i = mark
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}
