package service

import "context"

// SetAfterInsert makes s call f after each document insert: an ordering
// hook for tests.
func SetAfterInsert(s *DocumentService, f func(context.Context)) { s.afterInsert = f }
