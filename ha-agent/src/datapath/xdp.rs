//! XDP and TC programs: load, attach, read counters, fence.
