package service

import "github.com/orgsvc/orgsvc/internal/jsondoc"

// DefaultPageBytes is the byte budget of a listing page when none is set.
const DefaultPageBytes = 4 << 20

// DocumentLimits bound what one request over documents may cost; 0 takes
// the default.
type DocumentLimits struct {
	// PageBytes bounds the data (the documents' JSON text) of a listing
	// page; a page holds one document at least, however large.
	PageBytes int
	// MaxKeys bounds the keys of a document, nested ones included, after
	// a merge patch too (see jsondoc.Limits).
	MaxKeys int
}

// SetLimits sets the limits of listings and of merged documents.
func (s *DocumentService) SetLimits(l DocumentLimits) { s.limits = l }

func (s *DocumentService) pageBytes() int {
	if s.limits.PageBytes > 0 {
		return s.limits.PageBytes
	}
	return DefaultPageBytes
}

func (s *DocumentService) maxKeys() int {
	if s.limits.MaxKeys > 0 {
		return s.limits.MaxKeys
	}
	return jsondoc.DefaultMaxKeys
}
