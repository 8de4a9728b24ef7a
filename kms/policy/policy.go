// Package policy parses AWS key policies and evaluates requests against
// them, the way AWS KMS does for a key policy (and IAM for any policy):
// explicit deny wins, then any allow, else the request is implicitly
// denied.
//
// The grammar is AWS's policy language, restricted to what a resource
// policy on a KMS key can say:
//
//	{
//	  "Version": "2012-10-17",               // or "2008-10-17"; optional
//	  "Id": "...",                           // optional
//	  "Statement": [ {                       // a statement or a list of them
//	    "Sid": "...",                        // optional
//	    "Effect": "Allow" | "Deny",
//	    "Principal" | "NotPrincipal": "*" | {"AWS": ARN-or-account | [...], "Service": ...},
//	    "Action" | "NotAction": "kms:Decrypt" | ["kms:Generate*", "kms:*", "*"],
//	    "Resource" | "NotResource": "*" | ARN-pattern | [...],
//	    "Condition": {"<Qualifier:>Operator<IfExists>": {"key": value | [values]}}
//	  } ]
//	}
//
// Names of elements and the Effect value are case sensitive, as in AWS.
// Actions match case-insensitively with * and ? wildcards; resources match
// case-sensitively with wildcards. A principal is "*" (anyone
// authenticated), an ARN, or a 12-digit account id (which stands for the
// account's root, arn:aws:iam::ACCOUNT:root); a principal never matches
// by wildcard, as in AWS. "Service", "Federated" and "CanonicalUser"
// principals parse but never match (there are none here).
//
// Conditions: the String*, Numeric*, Date*, Bool, Null, IpAddress,
// NotIpAddress, ArnEquals/ArnLike (and their Not forms) operators, with
// the ForAnyValue: and ForAllValues: qualifiers and the IfExists suffix.
// Condition key names are case insensitive (they are lower-cased on
// parse, and the caller supplies lower-case names); values compare as the
// operator says. Operators AND together, so do the keys under one
// operator, and a key's values OR. For a key the request lacks, a
// positive operator is false and a negated one (StringNotEquals, ...) is
// true, unless IfExists makes both true; Null tests presence. A key with
// several values in the request (kms:EncryptionContextKeys) without a
// qualifier matches a positive operator if any value matches, a negated
// one if none does.
package policy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// MaxSize is the largest key policy AWS KMS accepts, in bytes.
const MaxSize = 32 << 10

// Effect of a statement.
type Effect string

// Effects.
const (
	Allow Effect = "Allow"
	Deny  Effect = "Deny"
)

// Document is a parsed policy.
type Document struct {
	Version    string
	ID         string
	Statements []*Statement
}

// Statement is one statement of a policy.
type Statement struct {
	Sid    string
	Effect Effect

	// Principals are the ARNs the statement names ("*" for anyone);
	// account ids are stored as the account's root ARN. Services lists
	// service principals, which never match here. NotPrincipal inverts.
	Principals   []string
	Services     []string
	NotPrincipal bool

	// Actions are lower-cased patterns; NotAction inverts.
	Actions   []string
	NotAction bool

	// Resources are patterns; NotResource inverts.
	Resources   []string
	NotResource bool

	Conditions []*Condition
}

// Condition is one key under one operator of a Condition block.
type Condition struct {
	// Operator as written, e.g. "ForAnyValue:StringLikeIfExists".
	Operator string
	// Key is the lower-cased condition key, e.g.
	// "kms:encryptioncontext:s3seal:bucket".
	Key    string
	Values []string

	op        opKind
	negated   bool
	qualifier qualifier
	ifExists  bool
	// parsed forms of Values, for the operators that need them
	nums  []float64
	times []time.Time
	nets  []netip.Prefix
}

type qualifier int

const (
	qualNone qualifier = iota
	qualAny
	qualAll
)

type opKind int

const (
	opStringEquals opKind = iota
	opStringEqualsIgnoreCase
	opStringLike
	opNumericEquals
	opNumericLessThan
	opNumericLessThanEquals
	opNumericGreaterThan
	opNumericGreaterThanEquals
	opDateEquals
	opDateLessThan
	opDateLessThanEquals
	opDateGreaterThan
	opDateGreaterThanEquals
	opBool
	opIPAddress
	opNull
)

// operators maps lower-cased operator names (without qualifier and
// IfExists) to their kind and whether they are negated.
var operators = map[string]struct {
	kind    opKind
	negated bool
}{
	"stringequals":              {opStringEquals, false},
	"stringnotequals":           {opStringEquals, true},
	"stringequalsignorecase":    {opStringEqualsIgnoreCase, false},
	"stringnotequalsignorecase": {opStringEqualsIgnoreCase, true},
	"stringlike":                {opStringLike, false},
	"stringnotlike":             {opStringLike, true},
	"arnequals":                 {opStringLike, false}, // ARN operators match with wildcards
	"arnlike":                   {opStringLike, false},
	"arnnotequals":              {opStringLike, true},
	"arnnotlike":                {opStringLike, true},
	"numericequals":             {opNumericEquals, false},
	"numericnotequals":          {opNumericEquals, true},
	"numericlessthan":           {opNumericLessThan, false},
	"numericlessthanequals":     {opNumericLessThanEquals, false},
	"numericgreaterthan":        {opNumericGreaterThan, false},
	"numericgreaterthanequals":  {opNumericGreaterThanEquals, false},
	"dateequals":                {opDateEquals, false},
	"datenotequals":             {opDateEquals, true},
	"datelessthan":              {opDateLessThan, false},
	"datelessthanequals":        {opDateLessThanEquals, false},
	"dategreaterthan":           {opDateGreaterThan, false},
	"dategreaterthanequals":     {opDateGreaterThanEquals, false},
	"bool":                      {opBool, false},
	"ipaddress":                 {opIPAddress, false},
	"notipaddress":              {opIPAddress, true},
	"null":                      {opNull, false},
}

// Error is a malformed policy (AWS KMS: MalformedPolicyDocumentException).
type Error struct {
	Reason string
}

func (e *Error) Error() string { return "policy: " + e.Reason }

func errorf(format string, args ...any) error {
	return &Error{Reason: fmt.Sprintf(format, args...)}
}

// Parse parses and validates a policy document.
func Parse(doc []byte) (*Document, error) {
	if len(doc) > MaxSize {
		return nil, errorf("the policy is %d bytes; the limit is %d", len(doc), MaxSize)
	}
	var raw map[string]json.RawMessage
	if err := strictUnmarshal(doc, &raw); err != nil {
		return nil, errorf("the policy is not a JSON object: %v", err)
	}
	if raw == nil {
		return nil, errorf("the policy is not a JSON object")
	}
	d := &Document{Version: "2008-10-17"}
	for name, v := range raw {
		var err error
		switch name {
		case "Version":
			err = unmarshalString(v, &d.Version)
			if err == nil && d.Version != "2012-10-17" && d.Version != "2008-10-17" {
				err = fmt.Errorf("unknown version %q", d.Version)
			}
		case "Id":
			err = unmarshalString(v, &d.ID)
		case "Statement":
			d.Statements, err = parseStatements(v)
		default:
			err = fmt.Errorf("unknown element")
		}
		if err != nil {
			return nil, errorf("%s: %v", name, err)
		}
	}
	if len(d.Statements) == 0 {
		return nil, errorf("the policy has no statement")
	}
	sids := map[string]bool{}
	for _, s := range d.Statements {
		if s.Sid == "" {
			continue
		}
		if sids[s.Sid] {
			return nil, errorf("statement id %q is not unique", s.Sid)
		}
		sids[s.Sid] = true
	}
	return d, nil
}

// strictUnmarshal decodes one JSON value and refuses anything after it.
func strictUnmarshal(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("data after the policy")
	}
	return nil
}

func unmarshalString(v json.RawMessage, s *string) error {
	if err := json.Unmarshal(v, s); err != nil {
		return fmt.Errorf("want a string")
	}
	return nil
}

// stringOrList reads "x" or ["x", "y"] (non-empty, strings only).
func stringOrList(v json.RawMessage) ([]string, error) {
	var one string
	if err := json.Unmarshal(v, &one); err == nil {
		return []string{one}, nil
	}
	var many []string
	if err := json.Unmarshal(v, &many); err != nil {
		return nil, fmt.Errorf("want a string or a list of strings")
	}
	if len(many) == 0 {
		return nil, fmt.Errorf("empty list")
	}
	return many, nil
}

func parseStatements(v json.RawMessage) ([]*Statement, error) {
	var list []json.RawMessage
	if err := json.Unmarshal(v, &list); err != nil {
		list = []json.RawMessage{v}
	}
	var out []*Statement
	for i, sv := range list {
		s, err := parseStatement(sv)
		if err != nil {
			return nil, fmt.Errorf("statement %d: %v", i, err)
		}
		out = append(out, s)
	}
	return out, nil
}

func parseStatement(v json.RawMessage) (*Statement, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(v, &raw); err != nil || raw == nil {
		return nil, fmt.Errorf("not a JSON object")
	}
	s := &Statement{}
	var havePrincipal, haveAction, haveResource int
	for name, ev := range raw {
		var err error
		switch name {
		case "Sid":
			err = unmarshalString(ev, &s.Sid)
		case "Effect":
			var e string
			if err = unmarshalString(ev, &e); err == nil {
				s.Effect = Effect(e)
				if s.Effect != Allow && s.Effect != Deny {
					err = fmt.Errorf("want Allow or Deny, got %q", e)
				}
			}
		case "Principal", "NotPrincipal":
			havePrincipal++
			s.NotPrincipal = name == "NotPrincipal"
			s.Principals, s.Services, err = parsePrincipal(ev)
		case "Action", "NotAction":
			haveAction++
			s.NotAction = name == "NotAction"
			s.Actions, err = parseActions(ev)
		case "Resource", "NotResource":
			haveResource++
			s.NotResource = name == "NotResource"
			s.Resources, err = stringOrList(ev)
			for _, r := range s.Resources {
				if err == nil && r != "*" && !strings.HasPrefix(r, "arn:") {
					err = fmt.Errorf("resource %q is neither * nor an ARN", r)
				}
			}
		case "Condition":
			s.Conditions, err = parseConditions(ev)
		default:
			err = fmt.Errorf("unknown element")
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %v", name, err)
		}
	}
	switch {
	case s.Effect == "":
		return nil, fmt.Errorf("no Effect")
	case havePrincipal != 1:
		return nil, fmt.Errorf("want exactly one of Principal and NotPrincipal")
	case haveAction != 1:
		return nil, fmt.Errorf("want exactly one of Action and NotAction")
	case haveResource != 1:
		return nil, fmt.Errorf("want exactly one of Resource and NotResource")
	}
	return s, nil
}

var accountRE = regexp.MustCompile(`^[0-9]{12}$`)

// RootARN is the ARN of an account's root principal.
func RootARN(account string) string { return "arn:aws:iam::" + account + ":root" }

func parsePrincipal(v json.RawMessage) (arns, services []string, err error) {
	var star string
	if json.Unmarshal(v, &star) == nil {
		if star != "*" {
			return nil, nil, fmt.Errorf("want \"*\" or an object such as {\"AWS\": ARN}")
		}
		return []string{"*"}, nil, nil
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(v, &m); err != nil || len(m) == 0 {
		return nil, nil, fmt.Errorf("want \"*\" or an object such as {\"AWS\": ARN}")
	}
	for kind, pv := range m {
		vals, err := stringOrList(pv)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %v", kind, err)
		}
		switch kind {
		case "AWS":
			for _, p := range vals {
				switch {
				case p == "*":
				case accountRE.MatchString(p):
					p = RootARN(p)
				case strings.HasPrefix(p, "arn:") && strings.Count(p, ":") >= 5:
					if strings.ContainsAny(p, "*?") {
						return nil, nil, fmt.Errorf("principal %q: wildcards are not allowed in a principal ARN", p)
					}
				default:
					return nil, nil, fmt.Errorf("principal %q is neither *, an account id nor an ARN", p)
				}
				arns = append(arns, p)
			}
		case "Service", "Federated", "CanonicalUser":
			services = append(services, vals...)
		default:
			return nil, nil, fmt.Errorf("unknown principal type %q", kind)
		}
	}
	return arns, services, nil
}

func parseActions(v json.RawMessage) ([]string, error) {
	acts, err := stringOrList(v)
	if err != nil {
		return nil, err
	}
	for i, a := range acts {
		if a != "*" {
			svc, name, ok := strings.Cut(a, ":")
			if !ok || svc == "" || name == "" || strings.ContainsAny(svc, "*?") {
				return nil, fmt.Errorf("action %q: want service:action, e.g. kms:Decrypt", a)
			}
		}
		acts[i] = strings.ToLower(a)
	}
	return acts, nil
}

func parseConditions(v json.RawMessage) ([]*Condition, error) {
	var block map[string]json.RawMessage
	if err := json.Unmarshal(v, &block); err != nil || block == nil {
		return nil, fmt.Errorf("want an object of operators")
	}
	var out []*Condition
	for opName, kv := range block {
		base, qual, ifExists := splitOperator(opName)
		info, ok := operators[strings.ToLower(base)]
		if !ok {
			return nil, fmt.Errorf("unknown operator %q", opName)
		}
		if ifExists && info.kind == opNull {
			return nil, fmt.Errorf("operator %q: Null takes no IfExists", opName)
		}
		var keys map[string]json.RawMessage
		if err := json.Unmarshal(kv, &keys); err != nil || len(keys) == 0 {
			return nil, fmt.Errorf("operator %q: want an object of condition keys", opName)
		}
		seen := map[string]bool{}
		for key, vv := range keys {
			lk := strings.ToLower(key)
			if seen[lk] {
				return nil, fmt.Errorf("%s: condition key %q appears twice (names are case insensitive)", opName, key)
			}
			seen[lk] = true
			vals, err := conditionValues(vv)
			if err != nil {
				return nil, fmt.Errorf("%s %s: %v", opName, key, err)
			}
			if key == "" {
				return nil, fmt.Errorf("%s: empty condition key", opName)
			}
			c := &Condition{
				Operator: opName, Key: strings.ToLower(key), Values: vals,
				op: info.kind, negated: info.negated, qualifier: qual, ifExists: ifExists,
			}
			if err := c.compile(); err != nil {
				return nil, fmt.Errorf("%s %s: %v", opName, key, err)
			}
			out = append(out, c)
		}
	}
	// Map order is random; keep evaluation and rendering stable.
	slices.SortFunc(out, func(a, b *Condition) int {
		return strings.Compare(a.Operator+"\x00"+a.Key, b.Operator+"\x00"+b.Key)
	})
	return out, nil
}

func splitOperator(name string) (base string, q qualifier, ifExists bool) {
	base = name
	if rest, ok := cutPrefixFold(base, "ForAnyValue:"); ok {
		base, q = rest, qualAny
	} else if rest, ok := cutPrefixFold(base, "ForAllValues:"); ok {
		base, q = rest, qualAll
	}
	if len(base) > len("IfExists") && strings.EqualFold(base[len(base)-len("IfExists"):], "IfExists") {
		base, ifExists = base[:len(base)-len("IfExists")], true
	}
	return base, q, ifExists
}

func cutPrefixFold(s, prefix string) (string, bool) {
	if len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix) {
		return s[len(prefix):], true
	}
	return s, false
}

// conditionValues reads a condition value: a string, number or boolean,
// or a non-empty list of them, as strings.
func conditionValues(v json.RawMessage) ([]string, error) {
	dec := json.NewDecoder(bytes.NewReader(v))
	dec.UseNumber()
	var x any
	if err := dec.Decode(&x); err != nil {
		return nil, err
	}
	scalar := func(x any) (string, bool) {
		switch t := x.(type) {
		case string:
			return t, true
		case json.Number:
			return t.String(), true
		case bool:
			return strconv.FormatBool(t), true
		}
		return "", false
	}
	if s, ok := scalar(x); ok {
		return []string{s}, nil
	}
	list, ok := x.([]any)
	if !ok || len(list) == 0 {
		return nil, fmt.Errorf("want a string, number, boolean or a non-empty list of them")
	}
	out := make([]string, 0, len(list))
	for _, e := range list {
		s, ok := scalar(e)
		if !ok {
			return nil, fmt.Errorf("want a string, number, boolean or a non-empty list of them")
		}
		out = append(out, s)
	}
	return out, nil
}

// compile parses the values for the operators that compare numbers,
// dates, addresses and booleans.
func (c *Condition) compile() error {
	switch c.op {
	case opNumericEquals, opNumericLessThan, opNumericLessThanEquals, opNumericGreaterThan, opNumericGreaterThanEquals:
		for _, v := range c.Values {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return fmt.Errorf("%q is not a number", v)
			}
			c.nums = append(c.nums, f)
		}
	case opDateEquals, opDateLessThan, opDateLessThanEquals, opDateGreaterThan, opDateGreaterThanEquals:
		for _, v := range c.Values {
			t, ok := parseDate(v)
			if !ok {
				return fmt.Errorf("%q is not a date (RFC 3339 or epoch seconds)", v)
			}
			c.times = append(c.times, t)
		}
	case opIPAddress:
		for _, v := range c.Values {
			p, err := netip.ParsePrefix(v)
			if err != nil {
				a, aerr := netip.ParseAddr(v)
				if aerr != nil {
					return fmt.Errorf("%q is not an IP address or CIDR block", v)
				}
				p = netip.PrefixFrom(a, a.BitLen())
			}
			c.nets = append(c.nets, p.Masked())
		}
	case opBool, opNull:
		for _, v := range c.Values {
			if !strings.EqualFold(v, "true") && !strings.EqualFold(v, "false") {
				return fmt.Errorf("%q is not true or false", v)
			}
		}
	}
	return nil
}

func parseDate(s string) (time.Time, bool) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04Z", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, true
		}
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		sec := int64(f)
		return time.Unix(sec, int64((f-float64(sec))*1e9)).UTC(), true
	}
	return time.Time{}, false
}

// MarshalJSON renders the document in a canonical form: every element in
// a fixed order, lists always as lists. Parsing the result gives an
// equivalent document.
func (d *Document) MarshalJSON() ([]byte, error) {
	type cond map[string]map[string][]string
	type stmt struct {
		Sid          string              `json:"Sid,omitempty"`
		Effect       Effect              `json:"Effect"`
		Principal    map[string][]string `json:"Principal,omitempty"`
		NotPrincipal map[string][]string `json:"NotPrincipal,omitempty"`
		Action       []string            `json:"Action,omitempty"`
		NotAction    []string            `json:"NotAction,omitempty"`
		Resource     []string            `json:"Resource,omitempty"`
		NotResource  []string            `json:"NotResource,omitempty"`
		Condition    cond                `json:"Condition,omitempty"`
	}
	out := struct {
		Version   string `json:"Version"`
		ID        string `json:"Id,omitempty"`
		Statement []stmt `json:"Statement"`
	}{Version: d.Version, ID: d.ID}
	for _, s := range d.Statements {
		st := stmt{Sid: s.Sid, Effect: s.Effect}
		p := map[string][]string{}
		if len(s.Principals) > 0 {
			p["AWS"] = s.Principals
		}
		if len(s.Services) > 0 {
			p["Service"] = s.Services
		}
		if s.NotPrincipal {
			st.NotPrincipal = p
		} else {
			st.Principal = p
		}
		if s.NotAction {
			st.NotAction = s.Actions
		} else {
			st.Action = s.Actions
		}
		if s.NotResource {
			st.NotResource = s.Resources
		} else {
			st.Resource = s.Resources
		}
		if len(s.Conditions) > 0 {
			st.Condition = cond{}
			for _, c := range s.Conditions {
				if st.Condition[c.Operator] == nil {
					st.Condition[c.Operator] = map[string][]string{}
				}
				st.Condition[c.Operator][c.Key] = append(st.Condition[c.Operator][c.Key], c.Values...)
			}
		}
		out.Statement = append(out.Statement, st)
	}
	return json.Marshal(out)
}
