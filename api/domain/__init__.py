"""Rules the feature services share: audit events, ending device sessions, the clock."""
