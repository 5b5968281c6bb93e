"""10DLC-style SMS campaigns: a brand's registered use of an account's numbers, with a status,
a capacity (how many numbers it may hold) and a throughput that delivery obeys."""
