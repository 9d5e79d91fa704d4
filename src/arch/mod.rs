//! Page-table walkers, one file per architecture.
