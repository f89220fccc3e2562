package awsproto

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/big"
	"strconv"
	"time"
)

// Timestamp is a timestamp as the AWS JSON protocols carry it: epoch seconds
// as a JSON number with millisecond precision (1700000000.123). It embeds
// time.Time, so IsZero is promoted and `omitzero` leaves unset timestamps out.
type Timestamp struct{ time.Time }

// MarshalJSON writes epoch seconds as a plain decimal number. AWS itself sends
// forms like 1.700000000123E9, but a plain decimal is what every SDK parses
// (botocore via float, the Go SDK via json.Number.Float64) without surprises.
func (t Timestamp) MarshalJSON() ([]byte, error) {
	ms := t.UnixMilli()
	var b []byte
	if ms < 0 {
		b = append(b, '-')
		ms = -ms
	}
	b = strconv.AppendInt(b, ms/1000, 10)
	if frac := ms % 1000; frac != 0 {
		b = append(b, '.')
		b = append(b, byte('0'+frac/100), byte('0'+frac/10%10), byte('0'+frac%10))
		b = bytes.TrimRight(b, "0")
	}
	return b, nil
}

// UnmarshalJSON accepts epoch seconds as a JSON number (integer, fraction or
// exponent form) or an ISO-8601 (RFC 3339) string. null leaves t unchanged, as
// the encoding/json convention for Unmarshalers asks; anything else is an error.
func (t *Timestamp) UnmarshalJSON(data []byte) error {
	data = bytes.TrimSpace(data)
	switch {
	case len(data) == 0:
		return fmt.Errorf("awsproto: empty timestamp")
	case string(data) == "null":
		return nil
	case data[0] == '"':
		var s string
		if err := json.Unmarshal(data, &s); err != nil {
			return fmt.Errorf("awsproto: invalid timestamp %s: %w", data, err)
		}
		v, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return fmt.Errorf("awsproto: invalid timestamp %q: not ISO-8601", s)
		}
		t.Time = v
		return nil
	case data[0] == '-' || ('0' <= data[0] && data[0] <= '9'):
		// Parse exactly (big.Rat) rather than via float64, which cannot hold
		// epoch seconds with milliseconds without rounding (…123 -> …122999).
		if !json.Valid(data) {
			return fmt.Errorf("awsproto: invalid timestamp %s", data)
		}
		// A huge exponent would make big.Rat allocate without bound.
		if i := bytes.IndexAny(data, "eE"); i >= 0 {
			if exp, err := strconv.Atoi(string(data[i+1:])); err != nil || exp > 30 || exp < -30 {
				return fmt.Errorf("awsproto: timestamp %s out of range", data)
			}
		}
		r, ok := new(big.Rat).SetString(string(data))
		if !ok {
			return fmt.Errorf("awsproto: invalid timestamp %s", data)
		}
		nanos := new(big.Int).Quo(new(big.Int).Mul(r.Num(), big.NewInt(1e9)), r.Denom())
		sec, ns := new(big.Int).DivMod(nanos, big.NewInt(1e9), new(big.Int))
		if !sec.IsInt64() {
			return fmt.Errorf("awsproto: timestamp %s out of range", data)
		}
		t.Time = time.Unix(sec.Int64(), ns.Int64()).UTC()
		return nil
	default:
		return fmt.Errorf("awsproto: invalid timestamp %s: want epoch seconds or an ISO-8601 string", data)
	}
}
