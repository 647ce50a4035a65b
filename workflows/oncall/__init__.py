"""On-call: rotations (`rotation`), escalation policies (`escalation_policy`) and the words-free
decisions about who is paged how (`paging`)."""
