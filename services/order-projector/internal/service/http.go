package service

import "net/http"

// http404 is the projector's API: it has none, only the operations routes.
func http404() http.Handler { return http.NotFoundHandler() }
