// Package oserr names the operating system errors p2pshare acts on (a
// refused or reset connection, a full disk, a rename across file systems)
// so that the same check holds on Unix, where they are errno values, and on
// Windows, where they are Winsock and Win32 error codes.
package oserr
