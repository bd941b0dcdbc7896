package share

import "context"

type fileObserverKey struct{}

// WithFileObserver returns a context under which Get calls obs with the
// path of each file it starts writing the bytes into (before the first
// byte), so a reader can follow the transfer as it arrives; progress
// reports how far the file is written. A second call means the transfer
// moved to another file and starts again from that file's first byte.
func WithFileObserver(ctx context.Context, obs func(path string)) context.Context {
	return context.WithValue(ctx, fileObserverKey{}, obs)
}

// observeFile tells ctx's observer, if any, that path is being written.
func observeFile(ctx context.Context, path string) {
	if obs, ok := ctx.Value(fileObserverKey{}).(func(string)); ok {
		obs(path)
	}
}
