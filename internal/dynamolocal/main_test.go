package dynamolocal

import "testing"

func TestMain(m *testing.M) { RunTests(m) }
