/* Replays fuzz inputs without libFuzzer (dav1d's fuzzing_engine=none): every file named on
 * the command line, or found in a folder named there, goes through the target once. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define REPLAY_MAX (4 * 1024 * 1024)

static int replay_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (f == NULL) {
		perror(path);
		return -1;
	}
	uint8_t *buf = malloc(REPLAY_MAX);
	if (buf == NULL) {
		fclose(f);
		return -1;
	}
	size_t n = fread(buf, 1, REPLAY_MAX, f);
	fclose(f);
	/* An exact-size copy, so reads past the input trip the sanitizers. */
	uint8_t *exact = malloc(n == 0 ? 1 : n);
	memcpy(exact, buf, n);
	free(buf);
	LLVMFuzzerTestOneInput(exact, n);
	free(exact);
	return 0;
}

static int cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(int argc, char **argv)
{
	size_t count = 0;
	int failed = 0;
	for (int i = 1; i < argc; i++) {
		struct stat st;
		if (stat(argv[i], &st) != 0) {
			perror(argv[i]);
			failed = 1;
			continue;
		}
		if (!S_ISDIR(st.st_mode)) {
			failed |= replay_file(argv[i]) != 0;
			count++;
			continue;
		}
		DIR *d = opendir(argv[i]);
		if (d == NULL) {
			perror(argv[i]);
			failed = 1;
			continue;
		}
		char **names = NULL;
		size_t n = 0;
		struct dirent *e;
		while ((e = readdir(d)) != NULL) {
			if (e->d_name[0] == '.')
				continue;
			names = realloc(names, (n + 1) * sizeof(*names));
			names[n] = malloc(strlen(argv[i]) + strlen(e->d_name) + 2);
			sprintf(names[n], "%s/%s", argv[i], e->d_name);
			n++;
		}
		closedir(d);
		qsort(names, n, sizeof(*names), cmp);
		for (size_t k = 0; k < n; k++) {
			failed |= replay_file(names[k]) != 0;
			count++;
			free(names[k]);
		}
		free(names);
	}
	printf("replayed %zu inputs\n", count);
	if (count == 0) {
		fprintf(stderr, "no inputs found\n");
		return 1;
	}
	return failed;
}
