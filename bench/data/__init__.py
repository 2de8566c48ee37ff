"""The local data files registered tasks read: checking a data folder, fetching one."""
