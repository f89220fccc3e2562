package ecrapi

import (
	"github.com/gantry-dev/gantry/ecr"
	"github.com/gantry-dev/gantry/internal/awsproto"
)

func encodeToken(op, after string) string { return awsproto.EncodePageToken(op, after) }

// decodeToken is awsproto.DecodePageToken with this service's error.
func decodeToken(op, token string) (string, error) {
	after, ok := awsproto.DecodePageToken(op, token)
	if !ok {
		return "", ecr.InvalidParameter("Invalid parameter at 'nextToken': it was not returned by %s", op)
	}
	return after, nil
}

// pageSize applies ECR's maxResults rule: 1 to 1000, default 100 (the
// model's number is not boxed, so 0 means "not given").
func pageSize(maxResults int32) (int, error) {
	switch {
	case maxResults == 0:
		return 100, nil
	case maxResults < 1:
		return 0, ecr.InvalidParameter("Invalid parameter at 'maxResults' failed to satisfy constraint: 'Member must have value greater than or equal to 1'")
	case maxResults > 1000:
		return 0, ecr.InvalidParameter("Invalid parameter at 'maxResults' failed to satisfy constraint: 'Member must have value less than or equal to 1000'")
	}
	return int(maxResults), nil
}
