// Package logs writes a process's captured output to files that rotate the way
// supervisord's do: name, name.1 (newest backup) ... name.N (oldest).
//
// A File is fed by Write, or by Pump from a child's pipe. Either way the file never
// exceeds max_bytes, and rotation moves the last partial line into the next file, so
// a line is never split across two files (unless a single line is longer than the
// look-back window, 64 KiB).
package logs
