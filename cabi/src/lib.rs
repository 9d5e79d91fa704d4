//! extern "C" layer of libkvm: argument checks, NULL handling, errbuf copies, catch_unwind.
