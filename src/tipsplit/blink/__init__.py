"""Everything tipsplit says to Blink: the GraphQL client, its operations, webhook checks."""
