package httpapi

import (
	"testing"

	"github.com/sluicehq/sluice/internal/dynamolocal"
)

// One shared DynamoDB Local per test binary; every test makes its own table.
func TestMain(m *testing.M) { dynamolocal.RunTests(m) }
