package service

import "github.com/orgsvc/orgsvc/internal/model"

// kinds is the table of operation kinds the runner drives (see Kind). A new
// kind is a file of its own with its steps, and a line here.
func (s *OrgService) kinds() map[string]Kind {
	return map[string]Kind{
		model.OpCreate:  {Prepare: s.prepareCreate, Complete: s.completeCreate, Undo: s.undoCreate, Unread: true},
		model.OpUpdate:  {Prepare: s.prepareUpdate, Complete: s.completeUpdate, Undo: s.undoUpdate, Failpoints: "rename"},
		model.OpDelete:  {Prepare: s.prepareDelete, Complete: s.completeDelete, Undo: s.undoDelete, Receipt: true, Unread: true},
		model.OpMember:  {Prepare: s.prepareMember, Complete: s.completeMember, Undo: s.undoMember},
		model.OpAccept:  {Prepare: s.prepareAccept, Complete: s.completeAccept, Undo: s.undoAccept},
		model.OpImport:  {Prepare: s.prepareImport, Complete: s.completeImport, Undo: s.undoImport, Lease: importLease},
		model.OpPurge:   {Prepare: s.preparePurge, Complete: s.completePurge, Undo: s.undoPurge},
		model.OpRestore: {Prepare: s.prepareRestore, Complete: s.completeRestore, Undo: s.undoRestore},
	}
}
