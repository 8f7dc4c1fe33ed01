package mail_test

import (
	"testing"

	"github.com/orgsvc/orgsvc/internal/storetest"
)

func TestMain(m *testing.M) { storetest.Main(m) }
