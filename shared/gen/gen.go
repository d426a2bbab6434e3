// Package gen is the root of the code generated from proto/ by
// `make generate`; do not edit anything below it by hand.
package gen

import "embed"

// OpenAPI holds the OpenAPI v2 document of every service, at
// <proto package path>/<file>.swagger.json.
//
//go:embed orderflow/*/v1/*.swagger.json
var OpenAPI embed.FS
