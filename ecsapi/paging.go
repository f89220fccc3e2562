package ecsapi

import (
	"github.com/gantry-dev/gantry/ecs"
	"github.com/gantry-dev/gantry/internal/awsproto"
)

func encodeToken(op, after string) string { return awsproto.EncodePageToken(op, after) }

// decodeToken is awsproto.DecodePageToken with this service's error.
func decodeToken(op, token string) (string, error) {
	after, ok := awsproto.DecodePageToken(op, token)
	if !ok {
		return "", ecs.InvalidParameter("Invalid nextToken: it was not returned by %s.", op)
	}
	return after, nil
}

// pageSize applies ECS's maxResults rule: 1 to max, default max.
func pageSize(maxResults *int32, max int) (int, error) {
	if maxResults == nil {
		return max, nil
	}
	if *maxResults < 1 || int(*maxResults) > max {
		return 0, ecs.InvalidParameter("maxResults must be between 1 and %d.", max)
	}
	return int(*maxResults), nil
}
