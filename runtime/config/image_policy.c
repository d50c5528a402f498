#include "config.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/config/image_policy.h"

static bool valid_prefix(const char *prefix)
{
	size_t length = strlen(prefix);

	if (strcmp(prefix, "*") == 0)
		return true;
	/* No empty component, no scheme, no tag or digest: names only. */
	return length > 0 && prefix[0] != '/' && prefix[length - 1] != '/' &&
	       strstr(prefix, "//") == NULL && strpbrk(prefix, "@*?") == NULL &&
	       strstr(prefix, "://") == NULL;
}

int image_policy_parse(const char *value, struct image_policy_rule *rule, char *why,
                       size_t why_size)
{
	char *copy = strdup(value), *save = NULL;
	const char *prefix = copy ? strtok_r(copy, " \t", &save) : NULL;
	const char *kind = prefix ? strtok_r(NULL, " \t", &save) : NULL;
	const char *word;
	int ret = -1;

	memset(rule, 0, sizeof *rule);
	if (copy == NULL) {
		snprintf(why, why_size, "out of memory");
		return -1;
	}
	if (prefix == NULL || kind == NULL)
		snprintf(why, why_size, "expected PREFIX signed-by KEY..., PREFIX reject or PREFIX accept");
	else if (!valid_prefix(prefix) || strlen(prefix) >= sizeof rule->prefix)
		snprintf(why, why_size, "'%s' is no prefix: a registry, REGISTRY/REPOSITORY or *", prefix);
	else if (strcmp(kind, "accept") == 0 || strcmp(kind, "reject") == 0) {
		rule->kind = kind[0] == 'a' ? POLICY_ACCEPT : POLICY_REJECT;
		if (strtok_r(NULL, " \t", &save) != NULL)
			snprintf(why, why_size, "nothing may follow %s", kind);
		else
			ret = 0;
	} else if (strcmp(kind, "signed-by") == 0) {
		rule->kind = POLICY_SIGNED_BY;
		ret = 0;
		while (ret == 0 && (word = strtok_r(NULL, " \t", &save)) != NULL) {
			if (word[0] != '/') {
				snprintf(why, why_size, "key '%s' is not an absolute path", word);
				ret = -1;
			} else if (strvec_push(&rule->keys, word) < 0) {
				snprintf(why, why_size, "out of memory");
				ret = -1;
			}
		}
		if (ret == 0 && rule->keys.count == 0) {
			snprintf(why, why_size, "signed-by needs at least one public key file");
			ret = -1;
		}
	} else
		snprintf(why, why_size, "'%s': expected signed-by, reject or accept", kind);
	if (ret == 0)
		snprintf(rule->prefix, sizeof rule->prefix, "%s", prefix);
	else
		image_policy_rule_free(rule);
	free(copy);
	return ret;
}

void image_policy_rule_free(struct image_policy_rule *rule)
{
	strvec_free(&rule->keys);
}

int image_policy_prefix_match(const char *prefix, const char *registry, const char *repository)
{
	size_t length = strcspn(prefix, "/");
	const char *rest = prefix + length;
	int components = 1;

	if (strcmp(prefix, "*") == 0)
		return 0;
	if (strlen(registry) != length || strncmp(prefix, registry, length) != 0)
		return -1;
	while (*rest == '/') {
		size_t part = strcspn(++rest, "/");

		/* The repository must go on with this whole component. */
		if (strncmp(repository, rest, part) != 0 ||
		    (repository[part] != '/' && repository[part] != '\0'))
			return -1;
		repository += part + (repository[part] == '/');
		rest += part;
		components++;
		if (*rest == '/' && repository[0] == '\0')
			return -1;
	}
	return components;
}

int image_policy_find(const struct strvec *lines, const char *registry, const char *repository,
                      struct image_policy_rule *rule, char *why, size_t why_size)
{
	int best = -1;
	size_t chosen = 0;

	for (size_t i = 0; i < lines->count; i++) {
		struct image_policy_rule candidate;
		int score;

		if (image_policy_parse(lines->items[i], &candidate, why, why_size) < 0)
			return -1;
		score = image_policy_prefix_match(candidate.prefix, registry, repository);
		image_policy_rule_free(&candidate);
		/* The later of two equal prefixes wins, as with other settings. */
		if (score >= best && score >= 0) {
			best = score;
			chosen = i;
		}
	}
	if (best < 0)
		return 0;
	return image_policy_parse(lines->items[chosen], rule, why, why_size) < 0 ? -1 : 1;
}
